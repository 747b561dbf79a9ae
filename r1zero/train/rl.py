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

With `async_level` k >= 1 the sampling side (`StepSampler`: prompts, generation, rewards, the curriculum) runs
k steps ahead of the learner, in a second process or a thread driving the ray pool (r1zero.train.pipelined):
step t trains on rollouts of the policy of step t-k, a fixed lag, so a run stays deterministic and resumable.
The loop reads the same; `policy_lag` in the metrics says how far behind each batch was.

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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

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
from r1zero.rollout.hf import HFSampler
from r1zero.rollout.multiturn import make_multiturn, tool_figures
from r1zero.stages import StageContext
from r1zero.tasks.curriculum import Curriculum
from r1zero.train.learner import LocalLearner, setup_policy
from r1zero.train.logs import MetricsLog, plot_curves
from r1zero.train.pipelined import InTurn, RolloutsAhead
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


@dataclass
class SampledStep:
    """The sampling side's work for one step: the scored groups and its own figures."""

    scored: Scored
    seconds_generation: float = 0.0
    seconds_reward: float = 0.0
    curriculum_level: int | None = None  # after this step's draws


@dataclass
class StepSampler:
    """One step's sampling side: draw prompts -> generate G completions each -> score, and dynamic sampling's
    extra rounds until B groups are kept. The same object runs in this process (async_level 0), in a worker
    process or in a thread driving the ray pool (async_level >= 1); its state is the curriculum's."""

    cfg: RLConfig
    seed: int
    task: Any
    tokenizer: Any
    sampler: Any  # None in the learner's process when a worker samples
    multi_turn: Any
    score: Callable
    held_out: set[str]
    reward_specs: dict[str, float]
    accuracy_name: str
    curriculum: Curriculum | None

    def __call__(self, step: int) -> SampledStep:
        cfg, out = self.cfg, SampledStep(Scored())
        params = SamplingParams(cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.top_k, list(cfg.stop))
        for round_ in range(1 + (cfg.max_resample if cfg.dynamic_sampling else 0)):
            examples = draw_examples(self.task, self.seed, step, round_, prompts_to_draw(cfg, out.scored),
                                     self.held_out, self.curriculum)
            prompt_ids = [self.tokenizer(tasks.render_prompt(e, cfg.template, self.tokenizer),
                                         add_special_tokens=False)["input_ids"] for e in examples]
            t_gen = time.perf_counter()
            how = replace(params, seed=(self.seed * 1_000_003 + step) * 101 + round_)
            rollouts = (self.multi_turn.generate(prompt_ids, cfg.group_size, how, examples) if self.multi_turn
                        else self.sampler.generate(prompt_ids, cfg.group_size, how))
            t_reward = time.perf_counter()
            out.seconds_generation += t_reward - t_gen
            score_groups(cfg, examples, rollouts, self.reward_specs, self.accuracy_name, out.scored, self.score)
            if self.curriculum:  # every group drawn counts, kept or not
                levels = [e.meta["difficulty"] for e in examples]
                self.curriculum.update_groups(levels, out.scored.sampled_correct[-len(rollouts):])
            out.seconds_reward += time.perf_counter() - t_reward
            if len(out.scored.examples) >= cfg.prompts_per_step:
                break
        out.curriculum_level = self.curriculum.level if self.curriculum else None
        return out

    def update_weights(self, state: dict) -> None:
        self.sampler.update_weights(state)

    def gradient(self, work) -> tuple:
        """A piece of the learner's update (`rl.worker_pieces`) on the sampler's copy of the policy."""
        return work.gradients(self.sampler.model)

    def checkpoint_objects(self) -> dict:
        return {"curriculum": self.curriculum} if self.curriculum else {}

    def state_dict(self) -> dict:
        return {name: obj.state_dict() for name, obj in self.checkpoint_objects().items()}

    def load_state_dict(self, state: dict) -> None:
        for name, obj in self.checkpoint_objects().items():
            obj.load_state_dict(state[name])


def make_step_sampler(cfg: RLConfig, ctx: StageContext, tokenizer, sampler, score=score_in_process) -> StepSampler:
    """The sampling side of `cfg`: task, held-out prompts, rewards, curriculum, multi-turn driver."""
    task = tasks.get(cfg.task, **cfg.task_options)
    held_out = set() if task.finite or not cfg.held_out else {
        str(e.prompt) for e in task.examples("test", n=cfg.held_out, seed=ctx.seed)}
    reward_specs = dict(cfg.rewards) or {name: 1.0 for name in task.rewards}
    multi_turn = make_multiturn(cfg, sampler, tokenizer) if sampler is not None else None  # None: single-turn
    return StepSampler(cfg, ctx.seed, task, tokenizer, sampler, multi_turn, score, held_out, reward_specs,
                       cfg.accuracy_reward or next(iter(reward_specs)), make_curriculum(cfg.curriculum, task))


def worker_step_sampler(cfg: RLConfig, ctx: StageContext) -> StepSampler:
    """The sampling side in a worker process (async_level >= 1): its own copy of the policy, which the
    learner's weights reach through `update_weights`, and rewards scored in that process."""
    model, tokenizer = setup_policy(cfg, ctx.model, ctx.device), load_tokenizer(ctx.model)
    return make_step_sampler(cfg, ctx, tokenizer, make_sampler(cfg.sampler, model, tokenizer, ctx.model,
                                                               cfg.sampler_options))


def check_worker_pieces(cfg: RLConfig, on_ray: bool, critic: bool) -> None:
    """`worker_pieces` needs a worker process holding the update's starting weights and one optimizer step."""
    if not cfg.worker_pieces:
        return
    why = ("async_level 0 (no worker)" if not cfg.async_level else
           "the sampler or the learners on Ray (no worker process)" if on_ray else
           f"sampler {cfg.sampler!r} (the worker computes on the hf sampler's model)"
           if not issubclass(sampler_class(cfg.sampler), HFSampler) else
           f"{cfg.worker_pieces} of length_buckets {cfg.length_buckets} (the learner must keep one)"
           if cfg.worker_pieces >= cfg.length_buckets else
           "several optimizer steps per RL step (the worker holds the weights of the first only)"
           if max(cfg.num_iterations, cfg.minibatches, cfg.grad_accum) > 1 else
           "a critic (it trains in the learner's process)" if critic else "")
    if why:
        raise UserError(f"rl.worker_pieces={cfg.worker_pieces} cannot be used with {why}; set worker_pieces: 0")


def make_rollouts(cfg: RLConfig, ctx: StageContext, model, tokenizer, score) -> InTurn | RolloutsAhead:
    """Where each step's rollouts come from: sampled in turn with the updates (async_level 0), or k steps ahead
    by a worker process (a sampler in one process) or by a thread driving a sampler whose compute is elsewhere
    (`needs_ray`: the ray pool)."""
    remote = getattr(sampler_class(cfg.sampler), "needs_ray", False)
    here = not cfg.async_level or remote  # else a worker process makes its own sampler
    sampler = make_sampler(cfg.sampler, model, tokenizer, ctx.model, cfg.sampler_options) if here else None
    step_sampler = make_step_sampler(cfg, ctx, tokenizer, sampler, score)  # checks task and curriculum here too
    if not cfg.async_level:
        return InTurn(step_sampler)
    if remote:
        return RolloutsAhead(cfg.async_level, cfg.steps, step_fn=step_sampler)
    # Fork only what forks safely: no CUDA, no vLLM, and no OpenMP thread pool to inherit (a forked
    # child that enters libgomp's parallel region waits forever on the parent's threads).
    forkable = (ctx.device == "cpu" and cfg.sampler == "hf" and not torch.cuda.is_initialized()
                and torch.get_num_threads() == 1)
    return RolloutsAhead(cfg.async_level, cfg.steps, make_step_fn=partial(worker_step_sampler, cfg, ctx),
                         threads=torch.get_num_threads(), start_method="fork" if forkable else "spawn")


def run_rl(cfg: RLConfig, ctx: StageContext) -> Path:
    torch.manual_seed(ctx.seed)
    model, tokenizer = setup_policy(cfg, ctx.model, ctx.device), load_tokenizer(ctx.model)
    advantage_fn, adv_cfg = ADVANTAGES.get(cfg.advantage), advantage_config(**cfg.advantage_options)
    loss_cfg = loss_config(cfg.loss, **cfg.loss_options)
    cluster = C.ClusterOptions.parse(cfg.cluster)
    learners_on_ray = cfg.learners > 1 or cluster.learner_resources.get("num_gpus", 0) > 0
    if learners_on_ray and getattr(advantage_fn, "token_advantages", None):
        raise UserError(f"advantage {cfg.advantage!r} trains a critic, which runs in this process only: "
                        "set learners: 1 and no cluster.learner_resources.num_gpus")
    if cfg.async_level and cluster.check_weights:
        raise UserError(f"rl.cluster.check_weights compares the sampler's weights with the learner's after each "
                        f"update, but with async_level={cfg.async_level} the sampler is meant to lag; set one of "
                        "them off")
    on_ray = learners_on_ray or getattr(sampler_class(cfg.sampler), "needs_ray", False)
    check_worker_pieces(cfg, on_ray, bool(getattr(advantage_fn, "token_advantages", None)))
    started_ray = on_ray and C.connect(cluster, ctx.stage_dir)
    learner = (RayLearnerGroup(cfg, model, ctx.model, ctx.seed, cfg.learners, cluster.strategy,
                               cluster.learner_resources)
               if learners_on_ray else LocalLearner(cfg, model, ctx.model, seed=ctx.seed))
    score = RayRewardScorer(cluster.reward_resources) if on_ray else score_in_process
    rollouts = make_rollouts(cfg, ctx, model, tokenizer, score)
    if cfg.worker_pieces:
        learner.lend_pieces(rollouts, cfg.worker_pieces)
    meter = StageMeter(model.config, stage=ctx.stage_id, lora_rank=cfg.lora_rank if cfg.lora else 0)
    samples_path = ctx.stage_dir / "samples.jsonl"
    state = {**learner.checkpoint_objects(), **rollouts.checkpoint_objects()}
    run = TrainingRun("rl", ctx.stage_dir, state, cfg.steps, ctx.resume, cfg.checkpoint_every, cfg.keep_checkpoints,
                      cfg.report_to, asdict(cfg))
    MetricsLog(samples_path).truncate_after(run.start)
    rollouts.start(run.start, learner.policy_state())  # samplers with their own copy start from the learner's

    t_last = time.perf_counter()
    for step in run.steps():
        with meter.phase("rollouts"):
            sampled, lag = rollouts.get(step)  # sampled now, or `lag` updates ago (async_level)
        scored = sampled.scored
        meter.add_sequences([len(r.prompt_ids) + len(r.completion_ids) for r in scored.sampled])
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
            if getattr(advantage_fn, "token_advantages", None):  # PPO's critic: old values, then its training
                meter.add_sequences(lengths[: len(batch)], kind="critic_values")
                meter.add_sequences(lengths, kind="critic", train=True)
        rollouts.update_weights(step, learner.policy_state())
        now = time.perf_counter()
        n_tokens = sum(len(r.completion_ids) for r in scored.sampled)
        row = step_metrics(step, scored, train_metrics, sampled.seconds_generation, now - t_train, now - t_last,
                           n_tokens, learner.last_lr(), sampled.seconds_reward)
        t_last, row["policy_lag"] = now, lag
        if sampled.curriculum_level is not None:
            row["curriculum_level"] = sampled.curriculum_level
        if cfg.tools or cfg.environment:
            row.update(tool_figures(scored.sampled))
        if cluster.check_weights:
            row.update(C.check_weights(learner, rollouts.sampler))
        run.write(row, info=f"reward {row['reward']:.3f} | acc {row['accuracy']:.3f} | "
                            f"len {row['response_length']:.1f}")
        write_samples(samples_path, step, scored, cfg.log_samples)

    final = learner.final_model()
    for worker in (rollouts, learner):
        worker.close()
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


def step_metrics(step, scored: Scored, train: dict, gen_s, train_s, total_s, n_tokens, lr,
                 reward_s: float | None = None) -> dict:
    """One metrics row. In the RL loop seconds_step is the wall time since the previous row, and the
    generation and reward seconds are the sampling side's (with async_level >= 1 they overlapped the
    previous steps' updates); reward_s None = what the step's time leaves after generation and training."""
    row = {"step": step, **rollout_figures(scored.sampled, scored.sampled_rewards, scored.sampled_correct),
           **rollout_figures(scored.rollouts, scored.rewards, scored.correct, "kept/"),
           "zero_variance_groups": scored.zero_variance_groups / max(scored.groups_seen, 1),
           "groups_kept": len(scored.examples), "lr": lr,
           "seconds_generation": gen_s, "seconds_train": train_s, "seconds_step": total_s,
           "tokens_per_s": n_tokens / max(gen_s, 1e-9)}
    row["seconds_reward"] = max(total_s - gen_s - train_s, 0.0) if reward_s is None else reward_s
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
