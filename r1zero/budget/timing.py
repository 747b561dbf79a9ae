"""How long a stage's kernels take: measured on this CPU, or a roofline for a device we cannot probe.

Why not FLOPs / peak: a 1M-parameter model on a CPU runs at a few percent of the matmul peak, and
that share depends on the shape (per-op dispatch overhead, Python in `generate`, how attention
reads the cache). So on CPU the cost model *measures this model's own kernels
at the shapes the plan needs* (random weights of the same config; the median of 3 training
micro-steps or no-grad forwards, the median of 12 decode steps at the mean context) and caches the
seconds in `~/.cache/r1zero/budget/kernels.json` keyed by config, shape, threads, CPU and torch
version. A generate call of n new tokens costs a prefill forward + n decode steps at context
P + n/2: decode cost is linear in the context, so the mean context gives the total. Seconds are
process CPU time divided by the threads: the wall time of an idle machine, and on a shared machine
still a measure of this process rather than of its neighbours (medians drop their bursts).

On GPUs (nothing to probe from here) a roofline: training and prefill at `TRAIN_MFU` of the peak,
decode steps at the larger of FLOPs / peak and bytes read / bandwidth, plus a per-layer launch
overhead. Those three constants are the usual rules of thumb, not measured by this project.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import statistics
import time
import warnings
from dataclasses import dataclass

from r1zero.budget.devices import Device, cache_dir, cpu_name
from r1zero.budget.flops import causal_context, model_counts
from r1zero.budget.memory import dtype_bytes

TRAIN_MFU = 0.35  # share of peak a well-fed GPU training step reaches (HF eager, no fused kernels)
DECODE_BANDWIDTH_SHARE = 0.6
LAUNCH_S_PER_LAYER = 3e-4  # HF generate on GPU: ~20 kernels per layer plus Python, per step
REPEATS = 3  # timed calls per probed kernel (the median counts)
DECODE_STEPS = 12  # decode steps timed per probe (the median step counts)


def absorb_mla(model) -> None:
    """Decode as the hf sampler does: DeepSeek-V3 attention over the compressed cache, if available."""
    try:
        from r1zero.models.mla import enable_absorbed_mla
    except ImportError:
        return
    enable_absorbed_mla(model)


class CostModel:
    """Seconds of one kernel call; subclasses measure or compute them."""

    def train_step(self, seqs: int, width: int, checkpointing: bool = False) -> float:
        raise NotImplementedError

    def forward(self, seqs: int, width: int) -> float:
        raise NotImplementedError

    def generate(self, seqs: int, prompt: int, new: int) -> float:
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

    def forward(self, seqs, width):
        return self.counts.forward_flops(seqs * width, causal_context(width)) / (self.peak * TRAIN_MFU)

    def generate(self, seqs, prompt, new):
        context = prompt + new / 2
        step_flops = self.counts.forward_flops(seqs, context)
        step_bytes = (self.counts.params * dtype_bytes(self.dtype)
                      + seqs * context * self.counts.kv_cache_bytes_per_token(dtype_bytes(self.dtype)))
        step = max(step_flops / (self.peak * TRAIN_MFU), step_bytes / (self.device.bandwidth_gbs * 1e9
                                                                        * DECODE_BANDWIDTH_SHARE))
        return self.forward(seqs, prompt) + new * (step + LAUNCH_S_PER_LAYER * self.counts.layers)


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
        self._train(2, 8, False)
        self._generate(2, 4, 2)

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
        torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-9).step()  # fresh state: the first step's cost, small
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
        return self._cached(f"train|{seqs}x{width}|ckpt={checkpointing}",
                            lambda: self._seconds(lambda: self._train(seqs, width, checkpointing)))

    def forward(self, seqs, width):
        import torch

        def run():
            self._model.eval()
            with torch.no_grad():
                self._model(input_ids=self._ids(seqs, width), use_cache=False)

        return self._cached(f"forward|{seqs}x{width}", lambda: self._seconds(run))

    def generate(self, seqs, prompt, new):
        """prefill(prompt) + `new` decode steps, each at the median cost of steps at context prompt + new / 2."""
        start = max(prompt + new // 2 - DECODE_STEPS // 2, 1)  # so that the median step sees P + new / 2

        def decode_step() -> float:
            stamps = self._generate(seqs, start, DECODE_STEPS + 1)
            return statistics.median(b - a for a, b in itertools.pairwise(stamps[2:])) / self.threads

        step = self._cached(f"decode|{seqs}x{start}+{DECODE_STEPS}", decode_step)
        return self.forward(seqs, prompt) + new * step
