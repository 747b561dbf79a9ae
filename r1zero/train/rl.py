"""Stage `rl`: GRPO-family reinforcement learning from verifiable rewards (R1-Zero's recipe).

One step, read top to bottom in `run_rl`: draw B prompts -> sample G completions each -> score
them with rule-based rewards -> group advantages -> `num_iterations` epochs of clipped policy-
gradient updates over minibatches -> hand the new weights to the sampler.

Where it departs from the R1 paper: defaults follow DAPO (token-mean loss, clip-higher, dynamic
sampling) and Dr. GRPO's finding that a KL term is not needed (beta = 0, so no reference model is
loaded); `loss=grpo loss_options={beta: 0.001}` gives R1-Zero's exact objective. Old log-probs come
from the sampler rather than a second forward pass (unless `tis_cap` > 0), so with `num_iterations=1` the ratio is 1 up
to numerical noise and the update is REINFORCE with group-normalised advantages.
Dynamic sampling's later rounds draw only the expected shortfall (`prompts_to_draw`), not DAPO's
whole batch. The update runs each micro-step in pieces of similar completion length, weighted so
that the gradient is the whole minibatch's (`LocalLearner.step`).
Prompts and sampling seeds are pure functions of (seed, step): a resumed run repeats exactly.
With `advantage: gae` (PPO) the learner also holds a critic that turns each
completion's reward into per-token advantages (r1zero.algo.gae, r1zero.train.critic).
Metrics (`reward`, `accuracy`, `response_length`, ...) cover every rollout sampled in the step; the
same figures over the groups that dynamic sampling kept for the update are logged under `kept/`.

The loop is the same on one process and on a Ray cluster; only the objects differ: the sampler
(`sampler`: hf in this process, or a `ray` pool of actors), the learner (`learners`: a
LocalLearner here, or a RayLearnerGroup of torch.distributed ranks) and the reward scorer (Ray
tasks when a cluster is in use). See r1zero.train.learner and r1zero.distributed.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from r1zero import tasks
from r1zero.algo import ADVANTAGES, advantage_config, loss_config
from r1zero.budget import StageMeter
from r1zero.config import RLConfig
from r1zero.distributed import cluster as C
from r1zero.distributed.learner_group import RayLearnerGroup
from r1zero.distributed.rewards import RayRewardScorer, score_in_process
from r1zero.errors import UserError
from r1zero.eval.metrics import has_recheck, reasons, well_formed
from r1zero.models.io import load_tokenizer, save_model_folder
from r1zero.rollout import make_sampler, sampler_class
from r1zero.rollout.base import SamplingParams
from r1zero.rollout.multiturn import make_multiturn, tool_figures
from r1zero.stages import StageContext
from r1zero.tasks.curriculum import Curriculum
from r1zero.train.learner import LocalLearner, setup_policy
from r1zero.train.logs import MetricsLog, plot_curves
from r1zero.train.rollout_batch import make_batch
from r1zero.train.scaffold import TrainingRun
from r1zero.types import Example, Rollout


@dataclass
class Scored:
    """Rollouts of whole groups with their rewards; grows as dynamic sampling adds groups."""

    examples: list[Example] = field(default_factory=list)  # (B,)
    rollouts: list[Rollout] = field(default_factory=list)  # (B*G,) prompt-major
    rewards: list[float] = field(default_factory=list)  # (B*G,)
    correct: list[bool] = field(default_factory=list)  # (B*G,)
    sampled: list[Rollout] = field(default_factory=list)  # (S,) every rollout of the step, kept or not
    sampled_rewards: list[float] = field(default_factory=list)  # (S,)
    sampled_correct: list[bool] = field(default_factory=list)  # (S,)
    reward_means: dict = field(default_factory=dict)
    reward_errors: dict = field(default_factory=dict)
    zero_variance_groups: int = 0
    groups_seen: int = 0


def draw_examples(task, seed: int, step: int, round_: int, n: int, held_out: set[str],
                  curriculum: Curriculum | None = None) -> list[Example]:
    """n training prompts, a pure function of (seed, step, round, n) and the curriculum's state (which
    picks each prompt's difficulty); evaluation problems are skipped."""
    rng, out = random.Random(f"rl-{seed}-{step}-{round_}"), []
    while len(out) < n:
        level = curriculum.next_level(rng) if curriculum else None
        example = task.sample(rng, level=level, split="train")
        if str(example.prompt) not in held_out:
            out.append(example)
    return out


def make_curriculum(options: dict, task) -> Curriculum | None:
    """`rl.curriculum` as a Curriculum over levels the task has; None when empty."""
    if not options:
        return None
    try:
        curriculum = Curriculum(**options)
    except TypeError as e:
        raise UserError(f"rl.curriculum: {e}; expected keys levels, threshold, window, min_samples, "
                        "frontier_share") from None
    if bad := set(curriculum.levels) - set(getattr(task, "levels", ())):
        raise UserError(f"rl.curriculum.levels: {sorted(bad)} are not levels of task {task.name!r} "
                        f"(levels: {list(getattr(task, 'levels', ()))})")
    return curriculum


def prompts_to_draw(cfg, scored: Scored) -> int:
    """Prompts for the next generation round: B at first; then, with dynamic sampling, the shortfall
    divided by the share of groups kept so far, plus a quarter (DAPO draws a whole batch each round;
    generation time grows with the rows, so a short round saves most of a second round's cost)."""
    B, kept = cfg.prompts_per_step, len(scored.examples)
    if not scored.groups_seen or not kept:
        return B
    return min(B, math.ceil(1.25 * (B - kept) * scored.groups_seen / kept))


def score_groups(cfg, examples, rollouts, reward_specs, accuracy_name, scored: Scored,
                 score=score_in_process) -> None:
    """Score the rollouts, then keep every group (or, with dynamic sampling, the informative ones)."""
    G = cfg.group_size
    prompts = [e.prompt for e in examples for _ in range(G)]
    texts = [r.text for r in rollouts]
    columns = {"answer": [e.answer for e in examples for _ in range(G)],
               "completion_ids": [r.completion_ids for r in rollouts]}
    for key in {k for e in examples for k in e.meta}:
        columns[key] = [e.meta.get(key) for e in examples for _ in range(G)]
    if any("env_reward" in r.info for r in rollouts):  # an environment's own score (r1zero.rollout.env)
        columns["env_reward"] = [r.info.get("env_reward") for r in rollouts]
    per_reward = {}  # name -> (B*G,) scores, one combine call per reward so each is kept apart
    results = score(list(dict.fromkeys([*reward_specs, accuracy_name])), prompts, texts, columns, cfg.reward_timeout_s)
    for name, (per_reward[name], mean, errors, *outcome_counts) in results.items():
        scored.reward_means.setdefault(f"reward/{name}", []).append(mean)
        key = f"reward/{name}/errors"
        scored.reward_errors[key] = scored.reward_errors.get(key, 0) + errors
        for key, count in (outcome_counts[0] if outcome_counts else {}).items():  # code: passed, timeout, ...
            scored.reward_errors[key] = scored.reward_errors.get(key, 0) + count
    total = [sum(w * per_reward[name][i] for name, w in reward_specs.items()) for i in range(len(texts))]
    scored.sampled += rollouts
    scored.sampled_rewards += total
    scored.sampled_correct += [score >= 1.0 for score in per_reward[accuracy_name]]
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


def run_rl(cfg: RLConfig, ctx: StageContext) -> Path:
    torch.manual_seed(ctx.seed)
    model, tokenizer = setup_policy(cfg, ctx.model, ctx.device), load_tokenizer(ctx.model)
    task = tasks.get(cfg.task, **cfg.task_options)
    held_out = set() if task.finite or not cfg.held_out else {
        str(e.prompt) for e in task.examples("test", n=cfg.held_out, seed=ctx.seed)}
    reward_specs = dict(cfg.rewards) or {name: 1.0 for name in task.rewards}
    accuracy_name = cfg.accuracy_reward or next(iter(reward_specs))
    advantage_fn, adv_cfg = ADVANTAGES.get(cfg.advantage), advantage_config(**cfg.advantage_options)
    loss_cfg = loss_config(cfg.loss, **cfg.loss_options)
    cluster = C.ClusterOptions.parse(cfg.cluster)
    learners_on_ray = cfg.learners > 1 or cluster.learner_resources.get("num_gpus", 0) > 0
    if learners_on_ray and getattr(advantage_fn, "token_advantages", None):
        raise UserError(f"advantage {cfg.advantage!r} trains a critic, which runs in this process only: "
                        "set learners: 1 and no cluster.learner_resources.num_gpus")
    on_ray = learners_on_ray or getattr(sampler_class(cfg.sampler), "needs_ray", False)
    started_ray = on_ray and C.connect(cluster, ctx.stage_dir)
    learner = (RayLearnerGroup(cfg, model, ctx.model, ctx.seed, cfg.learners, cluster.strategy,
                               cluster.learner_resources)
               if learners_on_ray else LocalLearner(cfg, model, ctx.model, seed=ctx.seed))
    sampler = make_sampler(cfg.sampler, model, tokenizer, ctx.model, cfg.sampler_options)
    multi_turn = make_multiturn(cfg, sampler, tokenizer)  # None: single-turn
    score = RayRewardScorer(cluster.reward_resources) if on_ray else score_in_process
    meter = StageMeter(model.config, stage=ctx.stage_id, lora_rank=cfg.lora_rank if cfg.lora else 0)
    params = SamplingParams(cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.top_k, list(cfg.stop))
    samples_path = ctx.stage_dir / "samples.jsonl"
    curriculum = make_curriculum(cfg.curriculum, task)
    state = {**learner.checkpoint_objects(), **({"curriculum": curriculum} if curriculum else {})}
    run = TrainingRun("rl", ctx.stage_dir, state, cfg.steps, ctx.resume, cfg.checkpoint_every, cfg.keep_checkpoints,
                      cfg.report_to, asdict(cfg))
    MetricsLog(samples_path).truncate_after(run.start)
    if run.start:
        sampler.update_weights(learner.policy_state())  # samplers with their own copy start from the folder

    for step in run.steps():
        t0 = time.perf_counter()
        scored, gen_s, n_tokens = Scored(), 0.0, 0
        for round_ in range(1 + (cfg.max_resample if cfg.dynamic_sampling else 0)):
            examples = draw_examples(task, ctx.seed, step, round_, prompts_to_draw(cfg, scored), held_out,
                                     curriculum)
            prompt_ids = [tokenizer(tasks.render_prompt(e, cfg.template, tokenizer),
                                    add_special_tokens=False)["input_ids"] for e in examples]
            t_gen = time.perf_counter()
            seed = (ctx.seed * 1_000_003 + step) * 101 + round_
            with meter.phase("generation"):
                how = replace(params, seed=seed)
                rollouts = (multi_turn.generate(prompt_ids, cfg.group_size, how, examples) if multi_turn
                            else sampler.generate(prompt_ids, cfg.group_size, how))
            meter.add_sequences([len(r.prompt_ids) + len(r.completion_ids) for r in rollouts])
            gen_s += time.perf_counter() - t_gen
            n_tokens += sum(len(r.completion_ids) for r in rollouts)
            with meter.phase("reward"):
                score_groups(cfg, examples, rollouts, reward_specs, accuracy_name, scored, score)
            if curriculum:  # every group drawn counts, kept or not
                levels = [e.meta["difficulty"] for e in examples]
                curriculum.update_groups(levels, scored.sampled_correct[-len(rollouts):])
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
                train_metrics = learner.step(batch, step)
            lengths = batch.attention_mask.sum(-1).tolist() * cfg.num_iterations
            meter.add_sequences(lengths, kind="train", train=True)
            if loss_cfg.beta > 0:
                meter.add_sequences(lengths, kind="reference")
            sampler.update_weights(learner.policy_state())
        row = step_metrics(step, scored, train_metrics, gen_s, time.perf_counter() - t_train,
                           time.perf_counter() - t0, n_tokens, learner.last_lr())
        if curriculum:
            row["curriculum_level"] = curriculum.level
        if multi_turn:
            row.update(tool_figures(scored.sampled))
        if cluster.check_weights:
            row.update(C.check_weights(learner, sampler))
        run.write(row, info=f"reward {row['reward']:.3f} | acc {row['accuracy']:.3f} | "
                            f"len {row['response_length']:.1f}")
        write_samples(samples_path, step, scored, cfg.log_samples)

    final = learner.final_model()
    for worker in (sampler, learner):
        getattr(worker, "close", lambda: None)()
    if started_ray:
        C.disconnect()
    meter.write(ctx.stage_dir)
    final = final.merge_and_unload() if cfg.lora else final
    out = save_model_folder(final.eval(), tokenizer, ctx.stage_dir / "model")
    plot_curves(run.log.rows(), ["reward", "accuracy", "response_length", "reasoning_share"],
                ctx.stage_dir / "curves.png", "rl")
    return out


def rollout_figures(rollouts: list[Rollout], rewards: list[float], correct: list[bool], prefix: str = "") -> dict:
    """Mean reward, accuracy, format, reasoning and re-check rates, response lengths of some rollouts."""
    texts = [r.text for r in rollouts]
    lengths = [len(r.completion_ids) for r in rollouts]
    n = max(len(texts), 1)
    return {f"{prefix}reward": sum(rewards) / n, f"{prefix}accuracy": sum(correct) / n,
            f"{prefix}format_rate": sum(map(well_formed, texts)) / n,
            f"{prefix}reasoning_share": sum(map(reasons, texts)) / n,
            f"{prefix}recheck_share": sum(map(has_recheck, texts)) / n,
            f"{prefix}response_length": sum(lengths) / n, f"{prefix}response_length_max": max(lengths, default=0)}


def step_metrics(step, scored: Scored, train: dict, gen_s, train_s, total_s, n_tokens, lr) -> dict:
    row = {"step": step, **rollout_figures(scored.sampled, scored.sampled_rewards, scored.sampled_correct),
           **rollout_figures(scored.rollouts, scored.rewards, scored.correct, "kept/"),
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
