"""What a stage cost: tokens, model FLOPs, wall time per phase, device-hours, MFU and money.

A stage loop creates one `StageMeter`, reports the tokens that went through the model, wraps its
phases in `meter.phase(name)` and ends with `meter.write(stage_dir)`, which writes `budget.json`
and prints one line. `budget_table(run_dir)` sums every stage's budget.json into the markdown table
of the run's report.

FLOPs are *model* FLOPs (see `flops.py`): 2N per token forward, 6N training, N the active
parameters, plus attention; padding and gradient-checkpointing recompute are not counted, so
wasted work shows up as a lower MFU. MFU = FLOPs / wall seconds / the device's peak (CPU: the
cached matmul probe). Peak memory is the process's peak resident set during the stage (Linux).
Device-hours are wall hours times devices; on CPU they are CPU-hours of the whole process, whatever
its thread count. Cost = device-hours x price per device-hour. The device
is detected (`device="auto"`: the first CUDA device, else the CPU); its price comes from
`price_per_hour`, else `$R1ZERO_PRICE_PER_HOUR`, else the device table (`devices.py`).
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from r1zero.budget.devices import Device, get_device
from r1zero.budget.flops import causal_context, model_counts


class StageMeter:
    """Accounting of one stage; cheap enough to call on every step.

    >>> meter = StageMeter(model.config, device="cpu")                  # doctest: +SKIP
    >>> with meter.phase("train"):                                        # doctest: +SKIP
    ...     meter.add_sequences(mask.sum(-1).tolist(), kind="train", train=True)
    >>> meter.write(stage_dir)                                             # doctest: +SKIP
    """

    def __init__(self, model_config, device: str | Device = "auto", price_per_hour: float | None = None,
                 dtype: str = "float32", lora_rank: int = 0, devices: int = 1, stage: str = ""):
        self.counts = model_counts(model_config)
        self.device = device if isinstance(device, Device) else get_device(device, price_per_hour=price_per_hour)
        if price_per_hour is not None:
            self.device = replace(self.device, price_per_hour=price_per_hour)
        self.dtype, self.lora_rank, self.devices, self.stage = dtype, lora_rank, devices, stage
        self.tokens: dict[str, int] = {}
        self.flops: dict[str, float] = {}
        self.phases: dict[str, float] = {}
        self._depth, self._outer = 0, 0.0  # open phases; seconds inside outermost phases
        self._t0, self._cpu0 = time.perf_counter(), time.process_time()
        reset_peak_rss()

    @classmethod
    def for_model_dir(cls, path: str | Path, **kwargs) -> StageMeter:
        """A meter for the model in folder `path` (its config.json), for stages that load it later."""
        from transformers import AutoConfig

        return cls(AutoConfig.from_pretrained(str(path)), **kwargs)

    def set_model(self, model_config) -> None:
        """Count the tokens added from now on with this model (a stage evaluating several models)."""
        self.counts = model_counts(model_config)

    def add_train_tokens(self, n: int, seq_len: float = 0, kind: str = "train") -> None:
        """`n` tokens trained on (forward + backward), in sequences of about `seq_len` tokens."""
        self._add(kind, n, n * causal_context(seq_len), train=True)

    def add_forward_tokens(self, n: int, seq_len: float = 0, kind: str = "forward") -> None:
        """`n` tokens through a forward pass only (`kind`: generation, reference, eval, ...).

        For generation count prompt + completion tokens with `seq_len` their full length: a causal
        prefill and a KV-cached decode do the same products.
        """
        self._add(kind, n, n * causal_context(seq_len), train=False)

    def add_sequences(self, lengths, kind: str = "generation", train: bool = False) -> None:
        """Whole causal sequences of the given real lengths (e.g. `mask.sum(-1).tolist()`, or prompt +
        completion length of each rollout); attention counted exactly, padding not at all."""
        lengths = [int(x) for x in lengths]
        self._add(kind, sum(lengths), sum(n * (n + 1) / 2 for n in lengths), train)

    def _add(self, kind: str, n: int, keys: float, train: bool) -> None:
        """`n` tokens attending to `keys` (query, key) pairs in all."""
        context = keys / n if n else 0.0
        flops = (self.counts.train_flops(n, context, self.lora_rank) if train
                 else self.counts.forward_flops(n, context))
        self.tokens[kind] = self.tokens.get(kind, 0) + int(n)
        self.flops[kind] = self.flops.get(kind, 0.0) + float(flops)

    @contextmanager
    def phase(self, name: str):
        """Wall time of the block, added to phase `name`; a phase nested in another counts in both,
        and only outermost phases are taken out of `other`."""
        t0 = time.perf_counter()
        self._depth += 1
        try:
            yield self
        finally:
            self._depth -= 1
            seconds = time.perf_counter() - t0
            self.phases[name] = self.phases.get(name, 0.0) + seconds
            if self._depth == 0:
                self._outer += seconds

    def summary(self) -> dict:
        seconds = time.perf_counter() - self._t0
        flops = sum(self.flops.values())
        peak = self.device.peak_flops(self.dtype) * self.devices
        hours = seconds / 3600 * self.devices
        phases = {k: round(v, 3) for k, v in self.phases.items()}
        phases["other"] = round(max(seconds - self._outer, 0.0), 3)
        return {
            "stage": self.stage, "device": self.device.name, "devices": self.devices, "dtype": self.dtype,
            "params": self.counts.params, "active_params": self.counts.active_params,
            "tokens": dict(self.tokens), "tokens_total": sum(self.tokens.values()),
            "flops": {k: float(v) for k, v in self.flops.items()}, "flops_total": flops,
            "seconds": round(seconds, 3), "cpu_seconds": round(time.process_time() - self._cpu0, 3),
            "phases": phases, "device_hours": hours,
            "flops_per_s": flops / max(seconds, 1e-9), "peak_flops_per_s": peak,
            "mfu": flops / max(seconds, 1e-9) / peak if peak else None,
            "price_per_hour": self.device.price_per_hour, "cost": hours * self.device.price_per_hour,
            "peak_rss_bytes": peak_rss(),
        }

    def write(self, stage_dir: str | Path, show: bool = True) -> dict:
        """Write `<stage_dir>/budget.json`, print the one-line summary, return the summary."""
        summary = self.summary()
        path = Path(stage_dir) / "budget.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(summary, indent=1))
        tmp.replace(path)
        if show:
            print(summary_line(summary))
        return summary


def reset_peak_rss() -> None:
    """Start the process's peak resident memory afresh (Linux: `5` to /proc/self/clear_refs), so that a
    stage's peak is its own, not an earlier stage's of the same `r1zero run`. Memory an earlier stage freed
    is first handed back to the system (glibc's malloc_trim), or the peak would start from it."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss() -> int | None:
    """Peak resident memory of this process since `reset_peak_rss` (bytes; None off Linux). It holds the
    interpreter and torch (~0.4 GB) besides the stage's tensors."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def hours_label(device: str) -> str:
    return "CPU-hours" if device == "cpu" else "GPU-hours" if device != "mixed" else "device-hours"


def fmt_count(x: float) -> str:
    """1234 -> 1.23k, 4.5e12 -> 4.50T."""
    for unit, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.2f}{unit}"
    return f"{x:.0f}"


def fmt_mfu(mfu: float | None) -> str:
    return "-" if mfu is None else f"{100 * mfu:.1f}%"


def summary_line(s: dict) -> str:
    phases = ", ".join(f"{k} {v:.1f}s" for k, v in s["phases"].items() if v >= 0.05)
    return (f"budget: {fmt_count(s['tokens_total'])} tokens, {fmt_count(s['flops_total'])}FLOPs, "
            f"{s['seconds']:.1f}s ({phases}), {s['device_hours']:.4f} {hours_label(s['device'])}, "
            f"{fmt_count(s['flops_per_s'])}FLOP/s = {fmt_mfu(s['mfu'])} MFU, ${s['cost']:.4f}")


def read_budgets(run_dir: str | Path) -> dict[str, dict]:
    """stage id -> its budget.json, in the run's stage order (config.yaml), else by folder name."""
    run_dir = Path(run_dir)
    order = []
    config = run_dir / "config.yaml"
    if config.is_file():
        import yaml

        order = list((yaml.safe_load(config.read_text()) or {}).get("stages", []))
    found = {p.parent.name: p for p in sorted(run_dir.glob("*/budget.json"))}
    ids = [s for s in order if s in found] + [s for s in found if s not in order]
    return {sid: json.loads(found[sid].read_text()) for sid in ids}


def total_budget(budgets: dict[str, dict]) -> dict:
    """The recipe's totals; MFU is total FLOPs over total (seconds x peak)."""
    rows = list(budgets.values())
    peak_seconds = sum(r["seconds"] * r["peak_flops_per_s"] for r in rows if r.get("peak_flops_per_s"))
    devices = {r["device"] for r in rows}
    flops = sum(r["flops_total"] for r in rows)
    return {"stage": "total", "device": devices.pop() if len(devices) == 1 else "mixed",
            "tokens_total": sum(r["tokens_total"] for r in rows), "flops_total": flops,
            "seconds": sum(r["seconds"] for r in rows), "device_hours": sum(r["device_hours"] for r in rows),
            "mfu": flops / peak_seconds if peak_seconds else None, "cost": sum(r["cost"] for r in rows),
            "peak_rss_bytes": max((r.get("peak_rss_bytes") or 0 for r in rows), default=0) or None}


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def budget_table(run_dir: str | Path) -> str:
    """Markdown table of every stage's budget.json in `run_dir` plus the recipe total ('' if none)."""
    budgets = read_budgets(run_dir)
    if not budgets:
        return ""
    total = total_budget(budgets)
    header = ["stage", "tokens", "FLOPs", "seconds", hours_label(total["device"]), "MFU", "peak memory", "cost"]
    rows = [[sid, fmt_count(r["tokens_total"]), fmt_count(r["flops_total"]), f"{r['seconds']:.1f}",
             f"{r['device_hours']:.4f}", fmt_mfu(r["mfu"]),
             f"{r['peak_rss_bytes'] / 2**20:.0f} MB" if r.get("peak_rss_bytes") else "-", f"${r['cost']:.4f}"]
            for sid, r in [*budgets.items(), ("**total**", total)]]
    price = {r["price_per_hour"] for r in budgets.values()}
    note = f"Cost at ${price.pop():.2f} per device-hour" if len(price) == 1 else "Cost at each stage's price"
    return (markdown_table(header, rows) + f"\n\n{note}; FLOPs are model FLOPs (6N training, 2N forward, "
            "N active parameters).\n")
