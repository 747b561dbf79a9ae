"""Stage `rl`: GRPO-family reinforcement learning from verifiable rewards (R1-Zero's recipe).

One step, read top to bottom in `run_rl`: draw B prompts -> sample G completions each -> score
them with rule-based rewards -> group advantages -> `num_iterations` epochs of clipped policy-
gradient updates over minibatches -> hand the new weights to the sampler.

Where it departs from the R1 paper: defaults follow DAPO (token-mean loss, clip-higher, dynamic
sampling) and Dr. GRPO's finding that a KL term is not needed (beta = 0, so no reference model is
loaded); `loss=grpo loss_options={beta: 0.001}` gives R1-Zero's exact objective. Old log-probs come
from the sampler rather than a second forward pass, so with `num_iterations=1` the ratio is 1 up
to numerical noise and the update is REINFORCE with group-normalised advantages.
Prompts and sampling seeds are pure functions of (seed, step): a resumed run repeats exactly.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from r1zero import rewards as R
from r1zero import tasks
from r1zero.algo import ADVANTAGES, LOSSES, AdvantageConfig, loss_config
from r1zero.budget import StageMeter
from r1zero.eval.metrics import reasons, well_formed
from r1zero.models.io import load_model, load_tokenizer, save_model_folder, with_lora
from r1zero.rollout.base import SamplingParams
from r1zero.rollout.hf import HFSampler
from r1zero.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from r1zero.train.metrics import MetricsLog, plot_curves, progress_bar
from r1zero.train.pretrain import warmup_cosine
from r1zero.train.rollout_batch import completion_logprobs, make_batch
from r1zero.types import Example, Rollout


@dataclass
class Scored:
    """Rollouts of whole groups with their rewards; grows as dynamic sampling adds groups."""

    examples: list[Example] = field(default_factory=list)  # (B,)
    rollouts: list[Rollout] = field(default_factory=list)  # (B*G,) prompt-major
    rewards: list[float] = field(default_factory=list)  # (B*G,)
    correct: list[bool] = field(default_factory=list)  # (B*G,)
    reward_means: dict = field(default_factory=dict)
    reward_errors: dict = field(default_factory=dict)
    zero_variance_groups: int = 0
    groups_seen: int = 0


def setup_policy(cfg, ctx):
    model, tokenizer = load_model(ctx.model), load_tokenizer(ctx.model)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if cfg.lora:
        model = with_lora(model, cfg.lora_rank, cfg.lora_alpha)
    model.train()
    return model, tokenizer


def reference_logprobs(cfg, ref_model, policy, batch):
    """Log-probs under the reference policy: the base with adapters off (LoRA), or a frozen copy."""
    with torch.no_grad():
        if cfg.lora:
            with policy.disable_adapter():
                return completion_logprobs(policy, batch, cfg.temperature)[0]
        return completion_logprobs(ref_model, batch, cfg.temperature)[0]


def draw_examples(task, cfg, seed: int, step: int, round_: int, held_out: set[str]) -> list[Example]:
    """B training prompts, a pure function of (seed, step, round); evaluation problems are skipped."""
    rng, out = random.Random(f"rl-{seed}-{step}-{round_}"), []
    while len(out) < cfg.prompts_per_step:
        example = task.sample(rng, split="train")
        if str(example.prompt) not in held_out:
            out.append(example)
    return out


def score_groups(cfg, examples, rollouts, reward_specs, accuracy_name, scored: Scored) -> None:
    """Score the rollouts, then keep every group (or, with dynamic sampling, the informative ones)."""
    G = cfg.group_size
    prompts = [e.prompt for e in examples for _ in range(G)]
    texts = [r.text for r in rollouts]
    columns = {"answer": [e.answer for e in examples for _ in range(G)],
               "completion_ids": [r.completion_ids for r in rollouts]}
    for key in {k for e in examples for k in e.meta}:
        columns[key] = [e.meta.get(key) for e in examples for _ in range(G)]
    per_reward = {}  # name -> (B*G,) scores, one combine call per reward so each is kept apart
    for name in dict.fromkeys([*reward_specs, accuracy_name]):
        per_reward[name], means, errors = R.combine([(R.reward_ref(name), 1.0)], prompts, texts, columns,
                                                    cfg.reward_timeout_s)
        scored.reward_means.setdefault(f"reward/{name}", []).append(next(iter(means.values())))
        key = f"reward/{name}/errors"
        scored.reward_errors[key] = scored.reward_errors.get(key, 0) + next(iter(errors.values()))
    total = [sum(w * per_reward[name][i] for name, w in reward_specs.items()) for i in range(len(texts))]
    for b, example in enumerate(examples):
        group = slice(b * G, (b + 1) * G)
        scored.groups_seen += 1
        if max(total[group]) == min(total[group]):
            scored.zero_variance_groups += 1
            if cfg.dynamic_sampling:
                continue
        if len(scored.examples) < cfg.prompts_per_step:
            scored.examples.append(example)
            scored.rollouts += rollouts[group]
            scored.rewards += total[group]
            scored.correct += [score >= 1.0 for score in per_reward[accuracy_name][group]]


def run_rl(cfg, ctx) -> Path:
    torch.manual_seed(ctx.seed)
    model, tokenizer = setup_policy(cfg, ctx)
    task = tasks.get(cfg.task, **cfg.task_options)
    held_out = set() if task.finite or not cfg.held_out else {
        str(e.prompt) for e in task.examples("test", n=cfg.held_out, seed=ctx.seed)}
    reward_specs = dict(cfg.rewards) or {name: 1.0 for name in task.rewards}
    accuracy_name = cfg.accuracy_reward or next(iter(reward_specs))
    advantage_fn, adv_cfg = ADVANTAGES.get(cfg.advantage), AdvantageConfig()
    loss_fn, loss_cfg = LOSSES.get(cfg.loss), loss_config(cfg.loss, **cfg.loss_options)
    ref_model = load_model(ctx.model) if loss_cfg.beta > 0 and not cfg.lora else None
    sampler = HFSampler(model, tokenizer)
    meter = StageMeter(model.config, stage=ctx.stage_id, lora_rank=cfg.lora_rank if cfg.lora else 0)
    params = SamplingParams(cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.top_k, list(cfg.stop))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    floor = 0.1 if cfg.lr_schedule == "cosine" else 1.0
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(max(cfg.warmup_steps, 1), cfg.steps, floor))
    log, ckpts = MetricsLog(ctx.stage_dir / "metrics.jsonl"), ctx.stage_dir / "checkpoints"
    samples_path = ctx.stage_dir / "samples.jsonl"
    state = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    start = 0
    if ctx.resume and (last := latest_checkpoint(ckpts)):
        start, _ = load_checkpoint(last, state)
        print(f"resuming rl from {last}")
    log.truncate_after(start)
    MetricsLog(samples_path).truncate_after(start)

    with progress_bar("rl") as bar:
        progress = bar.add_task("rl", total=cfg.steps, completed=start, info="")
        for step in range(start + 1, cfg.steps + 1):
            t0 = time.perf_counter()
            scored, gen_s, n_tokens = Scored(), 0.0, 0
            for round_ in range(1 + (cfg.max_resample if cfg.dynamic_sampling else 0)):
                examples = draw_examples(task, cfg, ctx.seed, step, round_, held_out)
                prompt_ids = [tokenizer(tasks.render_prompt(e, cfg.template, tokenizer),
                                        add_special_tokens=False)["input_ids"] for e in examples]
                t_gen = time.perf_counter()
                seed = (ctx.seed * 1_000_003 + step) * 101 + round_
                with meter.phase("generation"):
                    rollouts = sampler.generate(prompt_ids, cfg.group_size, replace(params, seed=seed))
                meter.add_sequences([len(r.prompt_ids) + len(r.completion_ids) for r in rollouts])
                gen_s += time.perf_counter() - t_gen
                n_tokens += sum(len(r.completion_ids) for r in rollouts)
                with meter.phase("reward"):
                    score_groups(cfg, examples, rollouts, reward_specs, accuracy_name, scored)
                if len(scored.examples) >= cfg.prompts_per_step:
                    break
            t_train = time.perf_counter()
            train_metrics = {}
            if scored.examples:
                rewards = torch.tensor(scored.rewards).view(-1, cfg.group_size)  # (B', G)
                adv = advantage_fn(rewards, adv_cfg).flatten()  # (B'*G,)
                batch = make_batch(scored.rollouts, adv, tokenizer.pad_token_id)
                if cfg.overlong_filter:
                    truncated = torch.tensor([r.finish_reason == "length" for r in scored.rollouts])
                    batch.completion_mask &= ~truncated[:, None]
                with meter.phase("train"):
                    train_metrics = update_policy(cfg, model, ref_model, optimizer, loss_fn, loss_cfg, batch)
                lengths = batch.attention_mask.sum(-1).tolist() * cfg.num_iterations
                meter.add_sequences(lengths, kind="train", train=True)
                if loss_cfg.beta > 0:
                    meter.add_sequences(lengths, kind="reference")
                scheduler.step()
                sampler.update_weights(model.state_dict())
            row = step_metrics(step, scored, train_metrics, gen_s, time.perf_counter() - t_train,
                               time.perf_counter() - t0, n_tokens, scheduler.get_last_lr()[0])
            log.write(row)
            write_samples(samples_path, step, scored, cfg.log_samples)
            bar.update(progress, completed=step, info=f"reward {row['reward']:.3f} | acc {row['accuracy']:.3f} | "
                                                      f"len {row['response_length']:.1f}")
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                save_checkpoint(ckpts, step, state, keep=cfg.keep_checkpoints)

    meter.write(ctx.stage_dir)
    final = model.merge_and_unload() if cfg.lora else model
    out = save_model_folder(final.eval(), tokenizer, ctx.stage_dir / "model")
    plot_curves(log.rows(), ["reward", "accuracy", "response_length", "reasoning_share"],
                ctx.stage_dir / "curves.png", "rl")
    return out


def update_policy(cfg, model, ref_model, optimizer, loss_fn, loss_cfg, batch) -> dict:
    """`num_iterations` epochs over `minibatches` shuffled minibatches, each `grad_accum` micro-steps."""
    sums: dict[str, float] = {}
    n_updates = 0
    gen = torch.Generator().manual_seed(len(batch))
    for _ in range(cfg.num_iterations):
        order = torch.randperm(len(batch), generator=gen)
        for mb_idx in order.chunk(cfg.minibatches):
            for micro_idx in mb_idx.chunk(cfg.grad_accum):
                micro = batch.select(micro_idx)
                logp, entropy = completion_logprobs(model, micro, cfg.temperature, with_entropy=True)
                ref_logp = reference_logprobs(cfg, ref_model, model, micro) if loss_cfg.beta > 0 else None
                loss, metrics = loss_fn(logp, micro.old_logp, ref_logp, micro.adv, micro.completion_mask, loss_cfg)
                (loss / cfg.grad_accum).backward()
                metrics["entropy"] = (entropy[micro.completion_mask].mean().item()
                                      if micro.completion_mask.any() else 0.0)
                metrics["loss"] = loss.item()
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + v
                n_updates += 1
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            sums["grad_norm"] = sums.get("grad_norm", 0.0) + grad_norm.item() * cfg.grad_accum
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    return {k: v / n_updates for k, v in sums.items()}


def step_metrics(step, scored: Scored, train: dict, gen_s, train_s, total_s, n_tokens, lr) -> dict:
    texts = [r.text for r in scored.rollouts]
    lengths = [len(r.completion_ids) for r in scored.rollouts]
    n = max(len(texts), 1)
    row = {"step": step, "reward": sum(scored.rewards) / n, "accuracy": sum(scored.correct) / n,
           "format_rate": sum(map(well_formed, texts)) / n, "reasoning_share": sum(map(reasons, texts)) / n,
           "response_length": sum(lengths) / n, "response_length_max": max(lengths, default=0),
           "zero_variance_groups": scored.zero_variance_groups / max(scored.groups_seen, 1),
           "groups_kept": len(scored.examples), "lr": lr,
           "seconds_generation": gen_s, "seconds_train": train_s, "seconds_step": total_s,
           "tokens_per_s": n_tokens / max(gen_s, 1e-9)}
    row["seconds_reward"] = max(total_s - gen_s - train_s, 0.0)
    for k, values in scored.reward_means.items():
        values = [v for v in values if v is not None]
        row[k] = sum(values) / len(values) if values else None
    row.update(scored.reward_errors)
    row.update({k: v for k, v in train.items() if k not in row})
    return row


def write_samples(path: Path, step: int, scored: Scored, k: int) -> None:
    if not k or not scored.rollouts:
        return
    G = len(scored.rollouts) // max(len(scored.examples), 1)
    with path.open("a") as f:
        for i in range(min(k, len(scored.rollouts))):
            e = scored.examples[i // G]
            f.write(json.dumps({"step": step, "prompt": e.prompt if isinstance(e.prompt, str) else e.prompt[-1],
                                "answer": e.answer, "completion": scored.rollouts[i].text,
                                "reward": scored.rewards[i]}) + "\n")
