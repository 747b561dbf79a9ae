"""The pretraining corpus and next-token batches, as pure functions: the documents of step i, their
padded LM batch, and its length buckets.

Shared by the `pretrain` stage and the budget planner (r1zero.budget.workload), which predicts the
stage's shapes from the very batches it will train on.
"""

from __future__ import annotations

import random

import torch

from r1zero.errors import UserError
from r1zero.tasks.arithmetic import (
    LAYOUTS,
    ArithmeticGenerator,
    answer_first_line,
    check_drill,
    corpus_line,
    exercise_line,
)
from r1zero.tasks.tool_corpus import ToolDocs, turn_token_ids


def corpus_batch(cfg, seed: int, step: int) -> list[str]:
    """The documents of step `step`: a pure function of (seed, step). Problems come from the training
    split only (`is_test`), so no evaluation problem, of any size, is ever trained on."""
    if cfg.layout not in LAYOUTS:
        raise UserError(f"pretrain.layout must be one of {', '.join(LAYOUTS)}; got {cfg.layout!r}")
    rng = random.Random(f"pretrain-{seed}-{step}")
    gen = ArithmeticGenerator(cfg.min_digits, cfg.max_digits, cfg.ops)
    tool_docs = ToolDocs.from_config(cfg) if cfg.tool_share or cfg.long_share else None
    docs = []
    while len(docs) < cfg.batch_size:
        if tool_docs and (line := tool_docs.line(rng)) is not None:  # long products (tiny-tools)
            docs.append(line)
            continue
        if cfg.drill_share and rng.random() < cfg.drill_share:
            docs.append(check_drill(rng, ops=cfg.ops))
            continue
        hard = cfg.hard_share and cfg.hard_digits > cfg.max_digits and rng.random() < cfg.hard_share
        p = gen.problem(rng, rng.randint(cfg.max_digits + 1, cfg.hard_digits) if hard else None)
        if cfg.exercise_share and rng.random() < cfg.exercise_share:
            docs.append(exercise_line(p, rng, cfg.slip_share))
            continue
        if cfg.answer_first:
            docs.append(answer_first_line(p, rng, cfg.verify_share, cfg.guess_wrong, cfg.slip_share))
            continue
        docs.append(corpus_line(p, rng, cfg.direct_share, cfg.slip_share, cfg.recheck_share,
                                cfg.recheck_density, cfg.spacing, cfg.layout))
    return docs


def lm_batch(tokenizer, texts: list[str], loss_on_prompt: bool = True) -> dict[str, torch.Tensor]:
    """Right-padded ids with eos appended; labels are -100 on padding (and on the prompt, up to `=`,
    unless `loss_on_prompt`)."""
    ids = [turn_token_ids(tokenizer, t) + [tokenizer.eos_token_id] for t in texts]  # tool replies as in rollouts
    prompt_lens = [0] * len(texts) if loss_on_prompt else [
        len(tokenizer(t[: t.index("=") + 1], add_special_tokens=False)["input_ids"]) for t in texts]
    width = max(map(len, ids))
    input_ids = torch.full((len(ids), width), tokenizer.pad_token_id)  # (B, T)
    mask = torch.zeros((len(ids), width), dtype=torch.bool)  # (B, T)
    labels = torch.full((len(ids), width), -100)  # (B, T)
    for i, (row, p) in enumerate(zip(ids, prompt_lens)):
        input_ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = True
        labels[i, p : len(row)] = input_ids[i, p : len(row)]
    return {"input_ids": input_ids, "attention_mask": mask.long(), "labels": labels}


def length_buckets(batch: dict[str, torch.Tensor], n: int):
    """Split a right-padded batch into `n` micro-batches of rows of similar length, each cut to its
    longest row, so that less compute goes to padding (the corpus mixes ~12-token direct answers
    with ~60-token worked ones). The summed gradient is the whole batch's (see `num_items_in_batch`)."""
    lengths = batch["attention_mask"].sum(-1)  # (B,)
    for rows in lengths.argsort().chunk(n):
        width = int(lengths[rows].max())
        yield {k: v[rows, :width] for k, v in batch.items()}
