"""Stage `pretrain`: next-token training on a synthetic corpus made by the task generators.

The corpus is arithmetic: worked column-by-column solutions inside `<think>`, some with a slip,
and some answers given directly. Batch `i` is a pure function of (seed, i), so the data position
is just the step, and a resumed run sees exactly the batches an uninterrupted one would.
The held-out evaluation problems are never trained on. With `processes` > 1, helper processes
compute the gradient of part of each step's micro-batches (r1zero/train/data_parallel.py).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import torch

from r1zero.budget import StageMeter
from r1zero.config import PretrainConfig
from r1zero.models.io import load_model, load_tokenizer, save_model_folder
from r1zero.stages import StageContext
from r1zero.train.data_parallel import GradientHelpers, backward_pieces, split_pieces, step_pieces
from r1zero.train.logs import plot_curves
from r1zero.train.moe_balance import ExpertLoadBalancer
from r1zero.train.scaffold import TrainingRun, adamw, optimizer_step


def run_pretrain(cfg: PretrainConfig, ctx: StageContext) -> Path:
    model, tokenizer = load_model(ctx.model, device=ctx.device), load_tokenizer(ctx.model)
    model.train()
    optimizer, scheduler = adamw(model, cfg.lr, cfg.weight_decay, cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio,
                                 betas=(0.9, 0.95))
    balancer = ExpertLoadBalancer(model, cfg.bias_update_gamma)
    meter = StageMeter(model.config, stage=ctx.stage_id)
    run = TrainingRun("pretrain", ctx.stage_dir, {"model": model, "optimizer": optimizer, "scheduler": scheduler},
                      cfg.steps, ctx.resume, cfg.checkpoint_every, cfg.keep_checkpoints, cfg.report_to, asdict(cfg))
    torch.manual_seed(ctx.seed)

    helpers = (GradientHelpers(cfg.processes, model, balancer, cfg, ctx.seed, ctx.model, torch.get_num_threads())
               if cfg.processes > 1 else None)
    tokens, t0 = 0, time.perf_counter()
    upcoming = step_pieces(tokenizer, cfg, ctx.seed, run.start + 1)
    for step in run.steps():
        if helpers:
            helpers.start(step)  # they take the longer micro-batches of the step
        pieces, n_labels = upcoming
        with meter.phase("train"):
            loss = backward_pieces(model, split_pieces(pieces, cfg.processes)[0], n_labels)
            upcoming = step_pieces(tokenizer, cfg, ctx.seed, step + 1)  # while the helpers finish
            if helpers:
                loss = helpers.add_to(loss)
            grad_norm = optimizer_step(model, optimizer, scheduler, cfg.grad_clip)
        lengths = torch.cat([p["attention_mask"].sum(-1) for p in pieces])  # (B,)
        meter.add_sequences(lengths.tolist(), kind="train", train=True)
        imbalance = balancer.step()
        tokens += int(lengths.sum())
        if step % cfg.log_every == 0 or step == cfg.steps:
            tok_s = tokens / (time.perf_counter() - t0)
            row = {"step": step, "loss": loss.item(), "lr": scheduler.get_last_lr()[0],
                   "grad_norm": grad_norm.item(), "tokens_per_s": tok_s}
            if balancer.active:
                row["expert_imbalance"] = imbalance
            run.write(row, info=f"loss {row['loss']:.3f} | {tok_s:,.0f} tok/s")
    if helpers:
        helpers.close()
    balancer.remove()
    meter.write(ctx.stage_dir)
    out = save_model_folder(model.eval(), tokenizer, ctx.stage_dir / "model")
    rows = run.log.rows()
    plot_curves(rows, ["loss", "expert_imbalance"], ctx.stage_dir / "loss.png", "pretrain")
    if rows:
        print(f"pretrain done: final loss {rows[-1]['loss']:.3f}; model in {out}")
    return out
