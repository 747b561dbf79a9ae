"""The value model of PPO with GAE (advantage `gae`): a second copy of the policy's trunk, a scalar head.

Why a separate copy rather than a value head on the policy's own hidden states: the value loss then
never pulls on the policy's representation (no vf_coef trade-off inside one network), the policy's
update is the same code with or without a critic, and the cost GRPO saves is in plain sight: one more
model's weights, AdamW states, forwards and backwards. It is what PPO for language models has done
since InstructGPT, and what TinyZero (verl's critic worker) runs. The trunk starts from the policy's
folder; the head starts at zero, so the first values are 0 and the first advantages are the rewards.

Values are read where the policy reads the logits of each completion token: the hidden state at
position P-1+t, the state before token t is sampled, gives V_t (as verl does). Departures: the critic
is trained in full (no LoRA) and in one process (learners: 1).
"""

from __future__ import annotations

import torch
from torch import nn

from r1zero.models.io import load_model
from r1zero.train.rollout_batch import RolloutBatch


class Critic(nn.Module):
    """V(s_t) for every completion token of a RolloutBatch: `critic(batch) -> values (N, T)`."""

    def __init__(self, model_dir, device: str = "cpu", gradient_checkpointing: bool = False):
        super().__init__()
        lm = load_model(model_dir, device=device)
        if gradient_checkpointing:
            lm.gradient_checkpointing_enable()
        self.trunk = lm.base_model  # the decoder without its LM head
        self.head = nn.Linear(lm.config.hidden_size, 1, device=next(lm.parameters()).device)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.train()

    def forward(self, batch: RolloutBatch) -> torch.Tensor:
        P, T = batch.prompt_width, batch.completion_mask.shape[1]
        hidden = self.trunk(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                            position_ids=batch.position_ids, use_cache=False).last_hidden_state  # (N, P+T, H)
        return self.head(hidden[:, P - 1 : P + T - 1].float()).squeeze(-1)  # (N, T)
