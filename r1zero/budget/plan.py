"""`r1zero plan`: before a recipe runs, each stage's memory, time and cost, whether it fits, and
the settings that would make it fit.

Memory is `memory.py`'s estimate; time is the stage's kernels (`workload.py`) times their cost
(`timing.py`: measured on this CPU, a roofline elsewhere), plus a fixed cost per stage (loading and
saving the model, checkpoints, plots), a cost per scored completion (rewards, answer verification,
voting) and per pretraining document, all measured on the tiny recipes' runs. Work on several
processes (pretraining helpers, evaluation workers, rl's sampler one step ahead) costs their start
and the slower side of what runs at once, each side slowed by the other (`timing.CONTENTION`). When a
stage does not fit, settings are tried in order of what they cost the result (gradient
checkpointing, more gradient-accumulation micro-steps, bf16, LoRA, smaller batches) and kept
cumulatively until it fits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from r1zero.budget.devices import Device
from r1zero.budget.flops import kv_cache_line, model_counts
from r1zero.budget.memory import GB, MemoryEstimate, dtype_bytes, estimate_memory
from r1zero.budget.timing import CostModel, ProbedCPU, Roofline, concurrent_seconds, pool_seconds
from r1zero.budget.workload import ZERO_VARIANCE_SHARE, Call, RecipeInputs, Workload

# CPU seconds a stage costs outside its metered work (loading and saving models, checkpoints, plots),
# inside `r1zero run` (the imports come before the first stage): a stage's done.json seconds minus its
# budget.json phases, medians over 9-14 demo and tiny-tools runs on the 2-core machine (build: its whole
# time, tokenizer training included: the median of the six demo runs of 2026-12-03 18:50-19:47, 2.0-2.5 s
# wall, at the corpus code of then; earlier code took 2.4-2.9 s on the least loaded runs); eval 0.15-0.9 s;
# report 0.3-1.0 s). pretrain: what is left of its "other" phase once its documents are paid for
# (SECONDS_PER_DOCUMENT), with the 0.6 s after the meter. rl and sample: the "other" phase of tiny-r1's idle run
# (seed 0, /tmp/runs/R1K, 2026-12-04): rl 0.49-0.76 s without a checkpoint (the 2-layer student's the least),
# 1.04-1.13 s with one; sample 0.25-0.27 s.
CPU_STAGE_FIXED_S = {"build": 2.3, "pretrain": 3.2, "eval": 0.4, "rl": 0.6, "sample": 0.3, "report": 0.7}
CPU_STAGE_FIXED_DEFAULT_S = 2.0
CPU_RL_CHECKPOINT_S = 0.4  # an rl checkpoint: model, AdamW state, RNG, written atomically
CPU_LATER_BUILD_S = 0.11  # a second build in one run: what the first imported is loaded (0.10-0.11 s idle)
# The report: 0.32-0.49 s with one figure (the demo's idle runs at 92d1ce8), 1.2 s with two (tiny-r1's claims,
# seed 1, /tmp/h22/r1s1, on a shared machine).
CPU_REPORT_S_PER_FIGURE = 0.4
GPU_STAGE_FIXED_S = 20.0  # + CUDA initialisation (a rule of thumb)
# CPU seconds per scored completion: answer extraction, the `math` reward (math-verify) and voting in
# eval (measured 0.0010-0.0014 s on the demo's 1,800 eval completions), rule rewards (numeric, format,
# readability) and filters in rl and sample (R1K: rl 0.3-0.8 s a stage, ~0.00004 s a completion; sample 0.21 s
# for 2,400 and 0.26 s for 3,000). The `math` reward adds math-verify's parse of each completion
# (bench/bench_math_reward.py: 3.98 ms of CPU a completion, in process).
SECONDS_PER_COMPLETION = {"eval": 0.0011, "sample": 0.00009, "rl": 0.00004}
SECONDS_PER_MATH_VERIFY = 0.004
# CPU seconds more per budget-forced answer that carries the rest of its working (`workload.forced_lengths`):
# math-verify parses the steps, in the reward and in voting. Measured on tiny-r1 seed 1's completions
# (/tmp/h22/r1s1, scored again alone): think_8's 800, ~70% of them such answers, 4.2 s; think_16-32's, 0.5-1.0 s.
SECONDS_PER_WORKING_ANSWER = 0.004
# CPU seconds per pretraining document: written by the corpus, tokenized, sorted into length buckets
# (`data_parallel.step_pieces`), outside the metered train phase: the "other" phase of idle runs of the
# demo's old pretraining, 13.25 s at 1200 x 64 documents and 7.93 s at 1200 x 32, is 2.6 s + 0.14 ms each.
SECONDS_PER_DOCUMENT = 0.00014
# A spawned process's start: Python, torch and transformers imported, the model folder loaded (pretrain
# helpers, eval workers, rl's sampler), before its first result. The demo's idle run /tmp/runs/T0: rl's step
# 1 took 5.06 s for 0.55 s of sampling and 0.80 s of training, 3.7 s waiting for the sampler to start; two
# eval workers starting at once, 4-5 s (measured with r1zero/eval/workers.py, commit 92d1ce8).
CPU_WORKER_START_S = 4.0


@dataclass
class StagePlan:
    stage: str
    kind: str
    params: int
    active_params: int
    tokens: float  # trained + generated (prompt and completion) tokens
    flops: dict[str, float]
    memory: MemoryEstimate
    seconds: dict[str, float]  # per part: fixed, train, reference, generation, scoring
    price_per_hour: float
    fits: bool
    suggestions: list[str] = field(default_factory=list)  # settings that make it fit (when it does not)
    notes: list[str] = field(default_factory=list)
    kv_cache: str = ""  # KV-cache bytes per token of the stage's model, vs multi-head attention
    processes: int = 1  # processes the stage computes on (its own process's CPU time leaves the others out)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    @property
    def cost(self) -> float:
        return self.total_seconds / 3600 * self.price_per_hour

    def to_dict(self) -> dict:
        return {"stage": self.stage, "kind": self.kind, "params": self.params, "active_params": self.active_params,
                "tokens": self.tokens, "flops": self.flops, "flops_total": sum(self.flops.values()),
                "memory_peak_bytes": self.memory.peak, "memory": self.memory.components(),
                "seconds": self.seconds, "seconds_total": self.total_seconds, "cost": self.cost,
                "fits": self.fits, "suggestions": self.suggestions, "notes": self.notes}


def cpu_fixed_seconds(kind: str, cfg, earlier_kinds: list[str]) -> float:
    """The fixed CPU seconds of a stage of `kind` (section `cfg`) after stages of `earlier_kinds`."""
    if kind == "build" and "build" in earlier_kinds:
        return CPU_LATER_BUILD_S
    if kind == "report":
        return CPU_REPORT_S_PER_FIGURE * (1 + bool((getattr(cfg, "claims", None) or {}).get("test_time")))
    if kind == "rl" and cfg is not None and cfg.checkpoint_every:  # written at steps k x every before the last
        return CPU_STAGE_FIXED_S["rl"] + CPU_RL_CHECKPOINT_S * ((cfg.steps - 1) // cfg.checkpoint_every)
    return CPU_STAGE_FIXED_S.get(kind, CPU_STAGE_FIXED_DEFAULT_S)


def stage_seconds(w: Workload, costs: CostModel | None, device: Device, fixed: float | None = None) -> dict[str, float]:
    """Seconds per part of the stage: fixed (default: the kind's) + kernels x counts + per-completion work.
    Work on several processes is priced by `timing.concurrent_seconds` (pretrain's shares of a step, rl's
    sampler beside its learner) and `timing.pool_seconds` (an evaluation's chunks)."""
    if fixed is None:
        fixed = CPU_STAGE_FIXED_S.get(w.kind, CPU_STAGE_FIXED_DEFAULT_S) if device.is_cpu else GPU_STAGE_FIXED_S
    out = {"fixed": fixed}
    if costs is None:
        return out
    if w.processes > 1 and device.is_cpu:
        out["workers"] = CPU_WORKER_START_S
    train = [c * costs.train_step(s, width, w.gradient_checkpointing) for c, s, width in w.train]
    out["data"] = w.documents * SECONDS_PER_DOCUMENT
    if w.train_ranks and w.processes > 1:  # each process builds the step's documents, then computes its share
        data = out.pop("data")  # every step alike: the stage's totals share as a step's do
        out["train"] = concurrent_seconds([data + sum(t for t, r in zip(train, w.train_ranks) if r == rank)
                                           for rank in range(w.processes)])
    else:
        out["train"] = sum(train)
    out["optimizer"] = w.optimizer_steps * costs.optimizer_step() if w.train else 0.0
    out["reference"] = sum(c * costs.forward(s, width) for c, s, width in w.forward)
    out["scoring"] = (w.completions * SECONDS_PER_COMPLETION.get(w.kind, 0.0)
                      + w.working_answers * SECONDS_PER_WORKING_ANSWER + w.verified * SECONDS_PER_MATH_VERIFY)
    if w.rounds and w.processes > 1:  # the stage's process scores a chunk while the workers generate the next
        out["scoring"] /= w.processes  # ones: its CPU seconds come out of their cores, shared by all of them

    def job(calls, lengths) -> float:  # one worker's chunk
        return sum(costs.generate(c.rows, c.width, c.new, c.lengths or lengths or w.completion_lengths)
                   for c in (Call(*call) for call in calls))

    if w.rounds:
        out["generation"] = sum(pool_seconds([job(calls, lengths) for calls in chunks], w.processes)
                                for chunks, lengths in zip(w.rounds, w.round_lengths, strict=True))
    else:
        out["generation"] = sum(c * job([(s, p, n)], None) for c, s, p, n in w.generate)
    if w.sampler_ahead:
        out["generation"] = overlapped_generation(out, w.steps)
    return {k: v for k, v in out.items() if v}


def overlapped_generation(parts: dict[str, float], steps: int) -> float:
    """rl with a sampler one step ahead (`pipelined.RolloutsAhead`): the generation seconds not hidden behind
    training. The learner waits for step 1's batch, then trains step t while step t+1 is sampled, and
    trains the last step alone: s + (steps - 1) x both at once + l, with s and l a step's sampling (with its
    rewards) and learning."""
    sample = (parts["generation"] + parts.pop("scoring", 0.0)) / steps
    learn = sum(parts.get(k, 0.0) for k in ("train", "optimizer", "reference")) / steps
    total = sample + (steps - 1) * concurrent_seconds([sample, learn]) + learn
    return total - steps * learn


def cost_model(config, device: Device, dtype: str, threads: int, probe: bool, lora_rank: int = 0) -> CostModel:
    if device.is_cpu and probe:
        return ProbedCPU(config, threads, lora_rank=lora_rank)
    return Roofline(config, device, dtype, lora_rank)


# Settings tried, in order, when a stage does not fit: (stage kinds, the change or None).
# "dtype" is not a recipe field: it stands for running with bf16 weights (`plan --dtype bfloat16`).
def _double(name: str, limit):
    return lambda cfg: {name: getattr(cfg, name) * 2} if getattr(cfg, name) * 2 <= limit(cfg) else None


def _halve(name: str):
    return lambda cfg: {name: getattr(cfg, name) // 2} if getattr(cfg, name) > 1 else None


SUGGESTIONS = [  # in order of preference: what they cost the result
    (("rl",), lambda cfg: None if cfg.gradient_checkpointing else {"gradient_checkpointing": True}),
    (("rl",), _double("grad_accum", lambda cfg: cfg.prompts_per_step * cfg.group_size // cfg.minibatches)),
    (("pretrain", "sft", "eval", "rl", "sample"), lambda cfg: {"dtype": "bfloat16"}),
    (("rl", "sft"), lambda cfg: None if cfg.lora else {"lora": True}),
    (("rl",), _halve("prompts_per_step")),
    (("pretrain", "sft", "eval"), _halve("batch_size")),
]


def candidate_steps(kind: str, cfg, dtype: str) -> list[dict]:
    """The single changes SUGGESTIONS offer from (cfg, dtype), in order of preference."""
    steps = []
    for kinds, suggest in SUGGESTIONS:
        step = suggest(cfg) if kind in kinds else None
        if step and step.get("dtype") != dtype:
            steps.append(step)
    return steps


def fitting_settings(inputs: RecipeInputs, sid: str, device: Device, dtype: str,
                     zero_share: float) -> list[str] | None:
    """Settings that make stage `sid` fit, or None. Each round takes the first change (in SUGGESTIONS
    order) that makes the stage fit, else the one that lowers the peak most, and keeps it."""
    kind, cfg, limit = inputs.recipe.kinds[sid], inputs.recipe.sections[sid], device.memory_gb * GB
    changes: dict = {}

    def peak(c, dt) -> float:
        return estimate_memory(inputs.workload(sid, c, zero_share), device, dt).peak

    current = peak(cfg, dtype)
    for _ in range(32):  # doublings and halvings repeat
        if current <= limit:
            return [f"--dtype {v}" if k == "dtype" else f"{sid}.{k}={str(v).lower()}" for k, v in changes.items()]
        dt = changes.get("dtype", dtype)
        options = []
        for step in candidate_steps(kind, cfg, dt):
            new_cfg = dataclasses.replace(cfg, **{k: v for k, v in step.items() if k != "dtype"})
            options.append((peak(new_cfg, step.get("dtype", dt)), step, new_cfg))
        if not options:
            return None
        fitting = [o for o in options if o[0] <= limit]
        best = fitting[0] if fitting else min(options, key=lambda o: o[0])
        if best[0] >= current:
            return None
        current, cfg = best[0], best[2]
        changes.update(best[1])
    return None


def plan_recipe(recipe, device: Device, dtype: str = "float32", probe: bool = True,
                zero_share: float = ZERO_VARIANCE_SHARE, threads: int | None = None,
                costs: CostModel | None = None) -> list[StagePlan]:
    """A StagePlan per stage of `recipe` on `device` (`costs`: one cost model for every stage)."""
    import os

    threads = threads or recipe.threads or os.cpu_count() or 1
    inputs, plans, models = RecipeInputs(recipe), [], {}
    for sid in recipe.stages:
        w = inputs.workload(sid, zero_share=zero_share)
        counts = model_counts(w.config) if w.config is not None else None
        key = (id(w.config), w.lora_rank)
        if w.config is not None and key not in models and (w.train or w.generate):
            models[key] = costs or cost_model(w.config, device, dtype, threads, probe, w.lora_rank)
        memory = estimate_memory(w, device, dtype) if counts else MemoryEstimate({"baseline": device.baseline_gb * GB})
        plan = StagePlan(sid, w.kind, counts.params if counts else 0, counts.active_params if counts else 0,
                         w.train_tokens + w.generated_tokens(), w.model_flops() if counts else {}, memory,
                         stage_seconds(w, models.get(key), device, cpu_fixed_seconds(
                             w.kind, recipe.sections[sid], [p.kind for p in plans]) if device.is_cpu else None),
                         device.price_per_hour,
                         fits=memory.peak <= device.memory_gb * GB, notes=list(w.notes),
                         kv_cache=kv_cache_line(w.config, dtype_bytes(dtype)) if counts else "",
                         processes=w.processes)
        if not plan.fits:
            found = fitting_settings(inputs, sid, device, dtype, zero_share)
            plan.suggestions = found or []
        plans.append(plan)
    return plans
