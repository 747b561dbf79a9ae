"""How long a stage's kernels take: measured on this CPU, or a roofline for a device we cannot probe.

Why not FLOPs / peak: a 1M-parameter model on a CPU runs at a few percent of the matmul peak, and
that share depends on the shape (per-op dispatch overhead, Python in `generate`, how attention
reads the cache). So on CPU the cost model *measures this model's own kernels
at the shapes the plan needs* (random weights of the same config; the median of 3 training
micro-steps or no-grad forwards, the median of 12 decode steps at the mean context) and caches the
seconds in `~/.cache/r1zero/budget/kernels.json` keyed by config, shape, threads, CPU and torch
version. A generate call costs a prefill forward + its decode steps at the mean context: decode cost
is linear in the context, so the mean context gives the total. Decode steps are probed in the loop the
samplers run: r1zero.rollout.decode for DeepSeek-V3 folders (it drops finished rows from the batch),
else `generate`. How many steps a call runs, and over how many rows, follows from the completion
lengths the workload expects (`decode_work`): without them, every row runs to max_new_tokens. Seconds are
process CPU time divided by the threads: the wall time of an idle machine, and on a shared machine
still a measure of this process rather than of its neighbours (medians drop their bursts).

A training micro-step is timed without its optimizer step, which is timed apart (AdamW with clipping,
as `r1zero.train.scaffold.optimizer_step`): a step of several micro-batches steps the optimizer once.

Processes that compute side by side, one core each, are slower than each alone: they share the
memory bandwidth and caches of the two cores (`CONTENTION`). `concurrent_seconds` prices processes
that start together (pretraining's helpers, rl's sampler beside its learner), `pool_seconds` jobs
handed in order to the first free worker (an evaluation's chunks).

On GPUs (nothing to probe from here) a roofline: training and prefill at `TRAIN_MFU` of the peak,
decode steps at the larger of FLOPs / peak and bytes read / bandwidth, plus a per-layer launch
overhead. Those three constants are the usual rules of thumb, not measured by this project.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import json
import random
import statistics
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from r1zero.budget.devices import Device, cache_dir, cpu_name
from r1zero.budget.flops import causal_context, model_counts
from r1zero.budget.memory import dtype_bytes

TRAIN_MFU = 0.35  # share of peak a well-fed GPU training step reaches (HF eager, no fused kernels)
DECODE_BANDWIDTH_SHARE = 0.6
LAUNCH_S_PER_LAYER = 3e-4  # HF generate on GPU: ~20 kernels per layer plus Python, per step
REPEATS = 3  # timed calls per probed kernel (the median counts)
# How much slower a process computes while another process computes on the other core of this 2-core
# machine (shared caches and memory bandwidth): the demo's pretraining trainer's share of a step, 0.174 s
# alone and 0.216 s with the helper computing the other share (r1zero/train/data_parallel.py, measured
# when it was written, commit 92d1ce8).
CONTENTION = 1.24
DECODE_STEPS = 12  # decode steps timed per probe (the median step counts)


def absorb_mla(model) -> None:
    """Decode as the hf sampler does: DeepSeek-V3 attention over the compressed cache, if available."""
    try:
        from r1zero.models.mla import enable_absorbed_mla
    except ImportError:
        return
    enable_absorbed_mla(model)


def decode_work(seqs: int, new: int, lengths: Sequence[int] = (), compact: bool = True,
                draws: int = 8) -> tuple[float, float]:
    """(decode forwards, row-forwards) a generate call of `seqs` rows and at most `new` tokens runs,
    averaged over `draws` seeded draws of each row's completion length from `lengths` (tokens, stop
    token included; empty: every row runs to `new`).

    The first token comes from the prefill; each later one costs a forward over the rows still in the
    batch. The call ends when every row has stopped; with `compact` (r1zero.rollout.decode) finished
    rows leave the batch once they are an eighth of it, without it (`generate`) they stay.

    >>> decode_work(4, 10), decode_work(4, 10, [3], compact=False), decode_work(8, 10, [2, 6])[0] < 9
    ((9.0, 36.0), (2.0, 8.0), True)
    """
    if not lengths:
        return float(new - 1), float(seqs * (new - 1))
    rng, steps, row_steps = random.Random(f"decode-{seqs}-{new}"), 0, 0
    for _ in range(draws):
        ends = collections.Counter(min(rng.choice(lengths), new) for _ in range(seqs))  # length -> rows
        alive, done = seqs, 0
        for t in range(1, new):  # t tokens drawn so far
            done += ends[t]
            if done == alive:
                break
            if compact and done * 8 >= alive:
                alive, done = alive - done, 0
            steps, row_steps = steps + 1, row_steps + alive
    return steps / draws, row_steps / draws


def concurrent_seconds(loads: Sequence[float]) -> float:
    """Wall seconds of processes that start together, one core each, with `loads` seconds of work each
    (alone on an idle machine): each runs `CONTENTION` times slower while another one still runs.

    >>> concurrent_seconds([2.0]), concurrent_seconds([1.0, 3.0]) == 1.0 * CONTENTION + 2.0
    (2.0, True)
    """
    loads = sorted(loads)
    if len(loads) < 2:
        return sum(loads)
    return loads[-2] * CONTENTION + loads[-1] - loads[-2]


def pool_seconds(jobs: Sequence[float], workers: int) -> float:
    """Wall seconds of `jobs` (seconds each, alone) handed in order to the first free of `workers`
    processes (a ProcessPoolExecutor), each `CONTENTION` times slower while another worker is busy.

    >>> pool_seconds([1.0, 2.0, 3.0], 1), pool_seconds([1.0, 1.0], 2) == CONTENTION
    (6.0, True)
    """
    if workers <= 1:
        return float(sum(jobs))
    left, queue, now = [], list(jobs), 0.0  # left: work (idle-machine seconds) of the jobs running
    while queue or left:
        while queue and len(left) < workers:
            left.append(queue.pop(0))
        slow = CONTENTION if len(left) > 1 else 1.0
        step = min(left)  # work until the next job ends
        now += step * slow
        left = [x - step for x in left if x - step > 1e-12]
    return now


class CostModel:
    """Seconds of one kernel call; subclasses measure or compute them."""

    def train_step(self, seqs: int, width: int, checkpointing: bool = False) -> float:
        """Forward and backward of a micro-batch (no optimizer step)."""
        raise NotImplementedError

    def optimizer_step(self) -> float:
        """Gradient clipping and an AdamW step over the trainable parameters."""
        raise NotImplementedError

    def forward(self, seqs: int, width: int) -> float:
        raise NotImplementedError

    def generate(self, seqs: int, prompt: int, new: int, lengths: Sequence[int] = ()) -> float:
        """A generate call of `seqs` rows, `prompt` wide, at most `new` tokens, rows stopping at
        `lengths` (see `decode_work`)."""
        raise NotImplementedError


@dataclass
class Roofline(CostModel):
    """Analytic times on `device` for the model `config` in `dtype`."""

    config: object
    device: Device
    dtype: str = "bfloat16"
    lora_rank: int = 0

    def __post_init__(self):
        self.counts = model_counts(self.config)
        self.peak = self.device.peak_flops(self.dtype)

    def train_step(self, seqs, width, checkpointing=False):
        flops = self.counts.train_flops(seqs * width, causal_context(width), self.lora_rank)
        return flops * (4 / 3 if checkpointing else 1) / (self.peak * TRAIN_MFU)

    def optimizer_step(self):
        # AdamW reads parameter, gradient and two moments and writes three of them, bandwidth-bound.
        params = self.counts.lora_params(self.lora_rank) if self.lora_rank else self.counts.params
        return params * 7 * 4 / (self.device.bandwidth_gbs * 1e9 * DECODE_BANDWIDTH_SHARE)

    def forward(self, seqs, width):
        return self.counts.forward_flops(seqs * width, causal_context(width)) / (self.peak * TRAIN_MFU)

    def generate(self, seqs, prompt, new, lengths=()):
        steps, _ = decode_work(seqs, new, lengths, compact=False)  # batched serving keeps the rows
        context = prompt + steps / 2
        step_flops = self.counts.forward_flops(seqs, context)
        step_bytes = (self.counts.params * dtype_bytes(self.dtype)
                      + seqs * context * self.counts.kv_cache_bytes_per_token(dtype_bytes(self.dtype)))
        step = max(step_flops / (self.peak * TRAIN_MFU), step_bytes / (self.device.bandwidth_gbs * 1e9
                                                                        * DECODE_BANDWIDTH_SHARE))
        return self.forward(seqs, prompt) + (steps + 1) * (step + LAUNCH_S_PER_LAYER * self.counts.layers)


class ProbedCPU(CostModel):
    """Times measured on this machine with this model's config (random weights), cached. With
    `lora_rank` the model is wrapped as the rl and sft stages wrap it (peft, all linear layers)."""

    def __init__(self, config, threads: int, use_cache: bool = True, lora_rank: int = 0):
        import torch

        self.config, self.threads, self.use_cache, self.lora_rank = config, threads, use_cache, lora_rank
        digest = hashlib.sha256(config.to_json_string(use_diff=False).encode()).hexdigest()[:16]
        self.prefix = f"{digest}|lora={lora_rank}|threads={threads}|{cpu_name()}|torch={torch.__version__}"
        self.path = cache_dir() / "kernels.json"
        self._model = None

    def _cached(self, name: str, measure) -> float:
        """`measure()` returns seconds (process CPU time / threads); measured once per key."""
        key = f"{self.prefix}|{name}"
        cache = json.loads(self.path.read_text()) if self.use_cache and self.path.is_file() else {}
        if key not in cache:
            with warnings.catch_warnings():  # deprecations and peft notices are not the plan's news
                warnings.simplefilter("ignore")
                self.model  # noqa: B018  (built and warmed up outside the timer)
                cache[key] = self._with_threads(measure)
            if self.use_cache:
                latest = json.loads(self.path.read_text()) if self.path.is_file() else {}
                self.path.write_text(json.dumps({**latest, key: cache[key]}, indent=1))
        return cache[key]

    def _with_threads(self, measure) -> float:
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return measure()
        finally:
            torch.set_num_threads(before)

    def _seconds(self, fn, repeats: int = REPEATS) -> float:
        """Median CPU seconds (per thread) of `repeats` calls: one neighbour's burst does not count."""
        times = []
        for _ in range(repeats):
            t0 = time.process_time()
            fn()
            times.append((time.process_time() - t0) / self.threads)
        return statistics.median(times)

    @property
    def model(self):
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM

            from r1zero.models.io import set_fast_experts

            torch.manual_seed(0)
            self._model = AutoModelForCausalLM.from_config(self.config)
            set_fast_experts(self._model)
            if self.lora_rank:
                from peft import LoraConfig, get_peft_model

                self._model = get_peft_model(self._model, LoraConfig(
                    r=self.lora_rank, lora_alpha=2 * self.lora_rank, target_modules="all-linear", lora_dropout=0.0))
            absorb_mla(self._model)  # after LoRA, as in the rl stage (LoRA keeps the expanded form)
            self._warm_up()
        return self._model

    def _warm_up(self) -> None:
        from r1zero.rollout import decode

        self._train(2, 8, False)
        self._generate(2, 4, 2)
        if decode.supports(self._model):
            self._lean(2, 4, 2)

    def _ids(self, seqs: int, width: int):
        import torch

        return torch.randint(3, self.config.vocab_size, (seqs, width))

    def _train(self, seqs: int, width: int, checkpointing: bool) -> None:
        import torch

        model = self._model
        model.train()
        if checkpointing:
            model.gradient_checkpointing_enable()
            if self.lora_rank:
                model.enable_input_require_grads()  # as peft needs for checkpointing frozen inputs
        ids = self._ids(seqs, width)
        model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids, use_cache=False).loss.backward()
        model.zero_grad(set_to_none=True)
        if checkpointing:
            model.gradient_checkpointing_disable()

    def _generate(self, seqs: int, width: int, new: int) -> list[float]:
        """Process CPU times: at the start, then after the prefill and after each decode step."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        class Clock(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                stamps.append(time.process_time())
                return torch.zeros(input_ids.shape[0], dtype=torch.bool)

        ids = self._ids(seqs, width)
        self._model.eval()
        stamps = [time.process_time()]
        with torch.no_grad():
            self._model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new,
                                 min_new_tokens=new, do_sample=True, pad_token_id=0, eos_token_id=None,
                                 return_dict_in_generate=True, output_logits=True,
                                 stopping_criteria=StoppingCriteriaList([Clock()]))
        return stamps

    def train_step(self, seqs, width, checkpointing=False):
        return self._cached(f"fwd-bwd|{seqs}x{width}|ckpt={checkpointing}",
                            lambda: self._seconds(lambda: self._train(seqs, width, checkpointing)))

    def optimizer_step(self):
        def measure() -> float:
            import torch

            params = [p for p in self._model.parameters() if p.requires_grad]
            grads = [torch.randn_like(p) for p in params]
            adamw = torch.optim.AdamW(params, lr=1e-9)  # tiny: the weights stay about what they were

            def step():
                for p, g in zip(params, grads):
                    p.grad = g
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                adamw.step()
                adamw.zero_grad(set_to_none=True)

            step()  # the moments are allocated at the first step, once a run
            return self._seconds(step, repeats=2 * REPEATS + 1)

        return self._cached("optimizer", measure)

    def forward(self, seqs, width):
        import torch

        def run():
            self._model.eval()
            with torch.no_grad():
                self._model(input_ids=self._ids(seqs, width), use_cache=False)

        return self._cached(f"forward|{seqs}x{width}", lambda: self._seconds(run))

    def generate(self, seqs, prompt, new, lengths=()):
        """prefill(prompt) + the decode forwards of `decode_work`, a forward over r rows costing a + b*r:
        a and b from probes at `seqs` rows and at an eighth of them, at the mean context."""
        steps, row_steps = decode_work(seqs, new, lengths, compact=self.lean)
        if not steps:
            return self.forward(seqs, prompt)
        start = max(prompt + round(steps) // 2 - DECODE_STEPS // 2, 1)  # so that the median step sees the mean context
        few = max(1, seqs // 8)
        full, small = self.decode_step(seqs, start), self.decode_step(few, start)
        per_row = (full - small) / (seqs - few) if seqs > few else 0.0
        return self.forward(seqs, prompt) + steps * (full - per_row * seqs) + row_steps * per_row

    @property
    def lean(self) -> bool:
        """Whether the samplers decode this model in r1zero's own loop (`rollout.decode`), not `generate`."""
        from r1zero.rollout import decode

        return decode.supports(self.model)

    def decode_step(self, seqs: int, start: int) -> float:
        """Seconds of one decode forward over `seqs` rows at context `start` (+ DECODE_STEPS / 2)."""
        if not self.lean:
            def hf_step() -> float:
                stamps = self._generate(seqs, start, DECODE_STEPS + 1)
                return statistics.median(b - a for a, b in itertools.pairwise(stamps[2:])) / self.threads

            return self._cached(f"decode|{seqs}x{start}+{DECODE_STEPS}", hf_step)

        def lean_step() -> float:
            many = self._seconds(lambda: self._lean(seqs, start, DECODE_STEPS + 1))
            one = self._seconds(lambda: self._lean(seqs, start, 1))  # the prefill alone
            return max(many - one, 0.0) / DECODE_STEPS

        return self._cached(f"lean-decode|{seqs}x{start}+{DECODE_STEPS}", lean_step)

    def _lean(self, seqs: int, width: int, new: int) -> None:
        import torch

        from r1zero.rollout import decode

        ids = self._ids(seqs, width)
        how = decode.Sampling(1.0, 0, 1.0, torch.tensor([-1]), 0)  # no stop id: every row runs to `new`
        decode.sample(self._model, ids, torch.ones_like(ids), new, how, 0)
