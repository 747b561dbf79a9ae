"""Stage `pretrain`: next-token training on a synthetic corpus made by the task generators.

The corpus is arithmetic: worked column-by-column solutions inside `<think>`, some with a slip,
and some answers given directly. Batch `i` is a pure function of (seed, i), so the data position
is just the step, and a resumed run sees exactly the batches an uninterrupted one would.
The held-out evaluation problems are never trained on.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from r1zero.budget import StageMeter
from r1zero.models.io import load_model, load_tokenizer, save_model_folder
from r1zero.train.checkpoint import resume, save_checkpoint
from r1zero.train.corpus import corpus_batch, length_buckets, lm_batch
from r1zero.train.metrics import MetricsLog, plot_curves, progress_bar
from r1zero.train.moe_balance import ExpertLoadBalancer


def warmup_cosine(warmup: int, total: int, floor: float):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def run_pretrain(cfg, ctx) -> Path:
    model, tokenizer = load_model(ctx.model, device=ctx.device), load_tokenizer(ctx.model)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio))
    balancer = ExpertLoadBalancer(model, cfg.bias_update_gamma)
    meter = StageMeter(model.config, stage=ctx.stage_id)
    log, ckpts = MetricsLog(ctx.stage_dir / "metrics.jsonl"), ctx.stage_dir / "checkpoints"
    state = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    start, _ = resume(ckpts, state, ctx.resume, "pretrain")
    log.truncate_after(start)
    torch.manual_seed(ctx.seed)

    tokens, t0 = 0, time.perf_counter()
    with progress_bar("pretrain") as bar:
        task = bar.add_task("pretrain", total=cfg.steps, completed=start, info="")
        for step in range(start + 1, cfg.steps + 1):
            batch = lm_batch(tokenizer, corpus_batch(cfg, ctx.seed, step), cfg.loss_on_prompt)
            batch = {k: v.to(model.device) for k, v in batch.items()}
            with meter.phase("train"):
                n_labels = (batch["labels"][:, 1:] != -100).sum()  # the loss averages over these
                loss = 0.0
                for micro in length_buckets(batch, cfg.length_buckets):
                    micro_loss = model(**micro, num_items_in_batch=n_labels).loss
                    micro_loss.backward()
                    loss += micro_loss.detach()
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            meter.add_sequences(batch["attention_mask"].sum(-1).tolist(), kind="train", train=True)
            imbalance = balancer.step()
            tokens += int(batch["attention_mask"].sum())
            if step % cfg.log_every == 0 or step == cfg.steps:
                tok_s = tokens / (time.perf_counter() - t0)
                row = {"step": step, "loss": loss.item(), "lr": scheduler.get_last_lr()[0],
                       "grad_norm": grad_norm.item(), "tokens_per_s": tok_s}
                if balancer.active:
                    row["expert_imbalance"] = imbalance
                log.write(row)
                bar.update(task, info=f"loss {row['loss']:.3f} | {tok_s:,.0f} tok/s")
            bar.update(task, completed=step)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                save_checkpoint(ckpts, step, state, keep=cfg.keep_checkpoints)
    balancer.remove()
    meter.write(ctx.stage_dir)
    out = save_model_folder(model.eval(), tokenizer, ctx.stage_dir / "model")
    rows = log.rows()
    plot_curves(rows, ["loss", "expert_imbalance"], ctx.stage_dir / "loss.png", "pretrain")
    if rows:
        print(f"pretrain done: final loss {rows[-1]['loss']:.3f}; model in {out}")
    return out
