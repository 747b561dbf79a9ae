"""Devices a run can be planned for: memory, peak FLOP/s, memory bandwidth and a price per hour.

GPU peaks are the vendors' dense (no sparsity) tensor-core numbers; prices are rough on-demand
cloud prices per device-hour (2025) for planning only: pass `--price` for yours. A CPU has no
datasheet peak that a PyTorch process can reach, so its peak is *measured* once by a matmul probe
(fp32, 1024 x 1024, on the threads the run uses) and cached in `~/.cache/r1zero/budget/` (or
`$R1ZERO_CACHE`). `$R1ZERO_PRICE_PER_HOUR` sets the price of every device. That makes CPU MFU the share of what this machine's BLAS does on a large matmul,
not of a theoretical FMA count. Any other device: `custom_device(memory_gb, peak_tflops)`.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, replace
from pathlib import Path

from r1zero.errors import UserError

CPU_PRICE_PER_HOUR = 0.10  # a small cloud VM (2-4 vCPU)
# Python + torch + transformers + r1zero, measured as the peak RSS of stages that do ~no work
# (bench/README.md, "The budget"): 413-423 MB with torch 2.13 CPU and transformers 5.
CPU_BASELINE_GB = 0.42
# build and report load no training or evaluation stack (measured 355-364 MB and 241-247 MB)
CPU_STAGE_BASELINE_GB = {"build": 0.35, "report": 0.24}
CUDA_CONTEXT_GB = 0.5  # CUDA context + cuBLAS workspace, typical


@dataclass(frozen=True)
class Device:
    name: str
    memory_gb: float
    peak_tflops: float  # bf16 / fp16 dense
    fp32_tflops: float  # plain fp32 (no TF32), what float32 training runs at
    bandwidth_gbs: float  # memory bandwidth, for decoding (memory-bound)
    price_per_hour: float  # USD per device-hour
    baseline_gb: float = CUDA_CONTEXT_GB  # memory the runtime takes before the model

    @property
    def is_cpu(self) -> bool:
        return self.name == "cpu"

    def peak_flops(self, dtype: str = "float32") -> float:
        """Peak FLOP/s for `dtype` (float32 or bfloat16/float16)."""
        return 1e12 * (self.fp32_tflops if dtype == "float32" else self.peak_tflops)


DEVICES = {d.name: d for d in [
    # name, memory GB, bf16 TFLOP/s, fp32 TFLOP/s, GB/s, $/h
    Device("t4", 16, 65, 8.1, 320, 0.35),
    Device("l4", 24, 121, 30, 300, 0.80),
    Device("a10g", 24, 70, 31, 600, 1.00),
    Device("rtx4090", 24, 165, 83, 1008, 0.40),
    Device("a100-40gb", 40, 312, 19.5, 1555, 1.30),
    Device("a100-80gb", 80, 312, 19.5, 2039, 1.80),
    Device("h100", 80, 989, 67, 3350, 2.50),
    Device("h200", 141, 989, 67, 4800, 3.50),
    Device("mi300x", 192, 1307, 163, 5300, 3.00),
]}


def env_price() -> float | None:
    value = os.environ.get("R1ZERO_PRICE_PER_HOUR")
    try:
        return float(value) if value else None
    except ValueError:
        raise UserError(f"R1ZERO_PRICE_PER_HOUR={value!r}: expected a number of USD per device-hour") from None


def cache_dir() -> Path:
    root = os.environ.get("R1ZERO_CACHE") or Path.home() / ".cache" / "r1zero"
    path = Path(root) / "budget"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def system_memory_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 8.0


def current_threads() -> int:
    import torch

    return torch.get_num_threads()


def matmul_probe(threads: int, size: int = 1024, seconds: float = 0.3) -> float:
    """FLOP/s of fp32 `size` x `size` matmuls on `threads` threads, timed in process CPU time.

    CPU time divided by the thread count stands for wall time on an idle machine: on a shared
    machine wall time measures the neighbours, CPU time mostly measures us.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b  # warm up (thread pool, caches)
        reps, t0 = 0, time.process_time()
        while time.process_time() - t0 < seconds * threads:
            a @ b
            reps += 1
        cpu = time.process_time() - t0
    finally:
        torch.set_num_threads(before)
    return 2 * size**3 * reps / (cpu / threads)


def cpu_peak_flops(threads: int | None = None) -> float:
    """The matmul probe's FLOP/s for this CPU and thread count, measured once and cached."""
    import torch

    threads = threads or current_threads()
    key = f"{cpu_name()}|threads={threads}|torch={torch.__version__}"
    path = cache_dir() / "cpu_peak.json"
    cache = json.loads(path.read_text()) if path.is_file() else {}
    if key not in cache:
        cache[key] = matmul_probe(threads)
        path.write_text(json.dumps(cache, indent=1))
    return cache[key]


def cpu_device(threads: int | None = None, peak_flops: float | None = None) -> Device:
    """This machine's CPU: system memory, probed peak (unless given), Python baseline memory."""
    peak = peak_flops if peak_flops is not None else cpu_peak_flops(threads)
    return Device("cpu", system_memory_gb(), peak / 1e12, peak / 1e12, 20, CPU_PRICE_PER_HOUR,
                  baseline_gb=CPU_BASELINE_GB)


GPU_NAMES = [("h200", "h200"), ("h100", "h100"), ("a100", "a100-40gb"), ("a10g", "a10g"), ("l4", "l4"),
             ("t4", "t4"), ("4090", "rtx4090"), ("mi300", "mi300x")]


def detect_device() -> Device:
    """The device this process computes on: the first CUDA device if there is one, else the CPU.
    A GPU not in DEVICES gets its memory and no peak (MFU is then not reported)."""
    import torch

    if not torch.cuda.is_available():
        return cpu_device()
    props = torch.cuda.get_device_properties(0)
    name, memory_gb = props.name.lower(), props.total_memory / 2**30
    for part, key in GPU_NAMES:
        if part in name:
            device = DEVICES["a100-80gb"] if key == "a100-40gb" and memory_gb > 50 else DEVICES[key]
            return replace(device, memory_gb=memory_gb)
    return custom_device(memory_gb, 0.0, name=props.name)


def custom_device(memory_gb: float, peak_tflops: float, price_per_hour: float = 0.0,
                  bandwidth_gbs: float = 1000.0, name: str = "custom") -> Device:
    return Device(name, memory_gb, peak_tflops, peak_tflops, bandwidth_gbs, price_per_hour)


def get_device(name: str = "cpu", memory_gb: float | None = None, peak_tflops: float | None = None,
               price_per_hour: float | None = None, threads: int | None = None) -> Device:
    """A known device by name (`cpu`, `auto` = `detect_device()`, or a row of DEVICES), with optional
    overrides; an unknown name needs `memory_gb` and `peak_tflops`. The price defaults to
    `$R1ZERO_PRICE_PER_HOUR` if set, else the device's."""
    key = name.lower()
    price_per_hour = price_per_hour if price_per_hour is not None else env_price()
    if key == "auto":
        device = detect_device()
    elif key == "cpu":
        device = cpu_device(threads, peak_tflops * 1e12 if peak_tflops else None)
    elif key in DEVICES:
        device = DEVICES[key]
    elif memory_gb and peak_tflops:
        device = custom_device(memory_gb, peak_tflops, name=key)
    else:
        raise UserError(f"unknown device {name!r}; expected cpu, one of {', '.join(DEVICES)}, "
                        "or any name with --memory GB and --peak-tflops T")
    changes = {"memory_gb": memory_gb, "price_per_hour": price_per_hour}
    if peak_tflops and not device.is_cpu:
        changes.update(peak_tflops=peak_tflops, fp32_tflops=peak_tflops)
    return replace(device, **{k: v for k, v in changes.items() if v is not None})
