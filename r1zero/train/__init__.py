"""Training loops (pretrain, sft, rl), checkpoints with exact resume, metrics and progress."""
