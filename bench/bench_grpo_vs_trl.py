"""GRPO step: r1zero's `run_rl` vs TRL's `GRPOTrainer`, same model, prompts and shapes, on CPU.

    python bench/bench_grpo_vs_trl.py [--model DIR] [--prompts-per-step 16] [--group-size 8]
        [--max-new-tokens 48] [--natural-length] [--steps 8] [--checkpointing off|on|both] [--rounds 1] [--threads 1]
        [--sides r1zero r1zero-async r1zero-async-pieces r1zero-async-all-rows trl trl-micro]

Sides: `r1zero` (async_level 0), `r1zero-async` (async_level 1: generation in a second process, one
thread, overlapping the update; its generation figures are the worker's `seconds_generation`, its CPU
time and memory the two processes' together, read from /proc at each step end: its peak RSS is the sum
of the two peaks, its peak physical memory counts the pages they share once), `r1zero-async-pieces` (the same,
with `worker_pieces` 1: the worker computes the gradient of one of the update's four pieces after sampling),
`r1zero-async-all-rows` (r1zero-async with `skip_zero_advantage` off: the update also runs the rows of groups
whose rewards are all equal, whose gradient is exactly 0, as TRL does; the other r1zero sides leave them out,
r1zero's default), `trl` (one 128-row micro-batch per optimizer step, as before) and `trl-micro`
(TRL's update in micro-batches the size of r1zero's pieces, B*G / length_buckets = 32 rows,
`gradient_accumulation_steps` 4 so one optimizer step still covers the B*G completions, and one
generation of B*G per optimizer step, so TRL still skips its old-log-prob forward): memory then compares
implementations, not a 128-row micro-batch against 32-row pieces.

Each side runs in its own subprocess, launched here one after the other (`--rounds` > 1 alternates
them again), so its memory is its own. Measured per side, steady state = steps 2..N (step 1 pays
for first-call allocations and lazy imports and is shown apart):
- seconds per step: wall time between consecutive step ends, so each side's logging is in;
- completion tokens/s: completion tokens over that wall time (generate + reward + loss + backward +
  optimizer), and generation-only tokens/s over the `generate` calls alone;
- the same two rates per second of process CPU time: on a shared machine the wall clock mostly
  measures the neighbours, CPU time much less so;
- peak RSS (`VmHWM`) as of the last step's end and at exit, and RSS once imports are done;
- the share of groups whose rewards were all equal (steps 2..N; r1zero's `zero_variance_groups`, TRL's
  `frac_reward_zero_std`): rows whose advantage is 0, which r1zero's update leaves out by default;
- peak physical memory: the peak RSS as of the last step's end, less the pages that the side's processes
  share (`shared_mb`, read once at that end): r1zero-async's worker is forked from the learner and shares
  its libraries and heap until one side writes a page, which a sum of RSS counts twice. Shared pages only
  become fewer as the run goes on (a written page is copied), so the figure read at the end is the fewest,
  and the peak an upper bound. For a one-process side it is its peak RSS.

Fairness: both sides get the same model folder loaded the same way (`r1zero.models.io.load_model`;
`--trl-loads-folder` lets TRL load the path itself), the same B prompts per step in the same order
(r1zero's own `draw_examples`, fed to TRL unshuffled), G completions each, temperature 1, the same
lr, grad clip 1, constant schedule, no KL (beta 0, so no reference model), DAPO's token-mean loss
with clip-higher, one optimizer step per rollout batch (TRL: `per_device_train_batch_size =
generation_batch_size = B*G`, no accumulation, so like r1zero it skips the old-log-prob forward), no
MoE aux loss, no dynamic sampling, no checkpoints, the same torch thread count, and gradient
checkpointing set alike (r1zero's default is off, TRL's on: `--checkpointing both` runs each).
Both generate exactly `max_new_tokens` per completion: the model folder's generation config (and
TRL's `generation_kwargs`) sets `min_new_tokens` to it, and the table shows the mean length. Forced to run
on past its answer, the demo's base gets most groups' rewards all equal (84% of groups with its 48 tokens),
more than an RL run sees (36-57% in the demo's runs); `--natural-length` drops `min_new_tokens` on both
sides, so completions end where the model ends them (lengths then differ a little between sides: compare
tokens/s).
Generation time is timed by one wrapper: around TRL's `GenerationMixin.generate`, and around
r1zero's `HFSampler.generate` (token ids in, rollouts out: it also counts decoding the texts), since
r1zero decodes DeepSeek-V3 in its own loop (r1zero.rollout.decode) rather than through `generate`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIDES = ("r1zero", "r1zero-async", "r1zero-async-pieces", "r1zero-async-all-rows", "trl", "trl-micro")
OURS, THEIRS = SIDES[:4], SIDES[4:]
WORKER_PIECES = 1  # r1zero-async-pieces: of the update's LENGTH_BUCKETS pieces, the rollout worker computes this many
LENGTH_BUCKETS = 4  # r1zero's default: each micro-step runs in this many pieces


@dataclass
class Timings:
    """Filled while a side runs: per `generate` call and per finished step, wall and CPU clocks."""

    gen_starts: list[float] = field(default_factory=list)
    gen_wall: list[float] = field(default_factory=list)
    gen_cpu: list[float] = field(default_factory=list)
    step_ends: list[float] = field(default_factory=list)
    step_cpu: list[float] = field(default_factory=list)  # process CPU time, all threads
    loop_peak_mb: float = 0.0  # peak RSS as of the last step's end, before the run's wrap-up
    worker_pid: int | None = None  # r1zero-async: the rollout worker, whose CPU time and memory count too
    worker_peak_mb: float = 0.0

    shared_mb: float = 0.0  # pages both processes map, read at the last step's end

    def end_step(self, last: bool = False) -> None:
        self.step_ends.append(time.perf_counter())
        self.step_cpu.append(time.process_time() + (process_cpu_s(self.worker_pid) if self.worker_pid else 0.0))
        if self.worker_pid:
            self.worker_peak_mb = memory_mb("VmHWM", self.worker_pid)
        self.loop_peak_mb = memory_mb("VmHWM") + self.worker_peak_mb
        if last:  # after the last timed step: costs no step any time
            self.shared_mb = shared_mb([os.getpid()] + ([self.worker_pid] if self.worker_pid else []))

    def figures(self, lengths: list[float], n: int, equal: list[float]) -> dict:
        """Steady state is steps 2..N: step 1 pays for first-call allocations and lazy imports."""
        steps = len(self.step_ends)
        tokens = sum(lengths[1:]) * n  # completion tokens of steps 2..N
        wall = self.step_ends[-1] - self.step_ends[0]
        cpu = self.step_cpu[-1] - self.step_cpu[0]
        return {"steps": steps, "mean_length": sum(lengths) / len(lengths),
                "first_step_s": self.step_ends[0] - self.gen_starts[0], "s_per_step": wall / (steps - 1),
                "cpu_s_per_step": cpu / (steps - 1), "tokens_per_s": tokens / wall,
                "gen_tokens_per_s": tokens / sum(self.gen_wall[1:]), "tokens_per_cpu_s": tokens / cpu,
                "gen_tokens_per_cpu_s": tokens / sum(self.gen_cpu[1:]) if self.gen_cpu else float("nan"),
                "gen_share": sum(self.gen_wall[1:]) / wall, "equal_groups": sum(equal[1:]) / len(equal[1:]),
                "loop_peak_rss_mb": self.loop_peak_mb, "peak_rss_mb": memory_mb("VmHWM") + self.worker_peak_mb,
                "peak_physical_mb": self.loop_peak_mb - self.shared_mb}


def memory_mb(key: str, pid: int | str = "self") -> float:
    """`VmHWM` (peak RSS) or `VmRSS` of a process (this one by default). Not `ru_maxrss`: on Linux a
    child's starts at the launching parent's peak (exec records the old address space's high-water
    mark), so it would read this bench's parent rather than the side."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split(f"{key}:")[1].split()[0]) / 1024  # kB


def shared_mb(pids: list[int]) -> float:
    """MB that the processes' RSS counts more than once: their summed `VmRSS` minus the distinct physical
    pages they map (from /proc/PID/pagemap; page frame numbers need root, else this reads 0). One process: ~0.
    A forked worker shares the learner's libraries and untouched heap pages, which summed RSS counts twice."""
    import numpy as np

    frames = []
    for pid in pids:
        with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pagemap:
            for line in maps:
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                if lo >= 1 << 47:  # the kernel's vsyscall page
                    continue
                pagemap.seek(lo // PAGE * 8)
                entries = np.frombuffer(pagemap.read((hi - lo) // PAGE * 8), dtype=np.uint64)
                present = entries[(entries >> np.uint64(63)) == 1]  # bit 63: in RAM; bits 0-54: the frame
                frames.append(present & np.uint64((1 << 55) - 1))
    distinct = np.unique(np.concatenate(frames))
    if not distinct.any():  # not root: frame numbers read as 0
        return 0.0
    return sum(memory_mb("VmRSS", pid) for pid in pids) - len(distinct) * PAGE / 2**20


PAGE = os.sysconf("SC_PAGE_SIZE")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def time_generate(timings: Timings, side: str) -> None:
    """Wrap the side's generation call (r1zero's sampler, TRL's `generate`) in the same timer."""
    if side.startswith("r1zero"):
        from r1zero.rollout.hf import HFSampler as owner
    else:
        from transformers.generation.utils import GenerationMixin as owner
    inner = owner.generate

    def timed(self, *args, **kwargs):
        t0, c0 = time.perf_counter(), time.process_time()
        out = inner(self, *args, **kwargs)
        timings.gen_starts.append(t0)
        timings.gen_wall.append(time.perf_counter() - t0)
        timings.gen_cpu.append(time.process_time() - c0)
        return out

    owner.generate = timed


def bench_model(source: Path | None, out: Path, max_new_tokens: int, natural: bool = False) -> Path:
    """A copy of `source` (default: the default build shape, random weights); fixed-length completions unless
    `natural`."""
    if source is not None:
        shutil.copytree(source, out)
    else:
        from dataclasses import asdict

        from r1zero.config import BuildConfig
        from r1zero.models.build import ModelShape, build_model

        build_model(ModelShape(**asdict(BuildConfig())), out, seed=0)
    gen_path = out / "generation_config.json"
    gen = json.loads(gen_path.read_text())
    if not natural:
        gen["min_new_tokens"] = max_new_tokens  # an untrained model may sample EOS; forbid it on both sides
    gen_path.write_text(json.dumps(gen, indent=2))
    return out


def rl_config(args):
    from r1zero.config import RLConfig

    return RLConfig(task="arithmetic", template="plain", rewards={"numeric": 1.0, "format": 0.1},
                    steps=args.steps, prompts_per_step=args.prompts_per_step, group_size=args.group_size,
                    max_new_tokens=args.max_new_tokens, temperature=1.0, stop=[], advantage="grpo",
                    loss="dapo", num_iterations=1, minibatches=1, grad_accum=1, lr=args.lr,
                    dynamic_sampling=False, checkpoint_every=0, log_samples=0,
                    gradient_checkpointing=args.checkpointing == "on")


def step_examples(cfg, seed: int):
    """The prompts r1zero's run draws, step by step (the same pure function of (seed, step))."""
    from r1zero import tasks
    from r1zero.train.rl import draw_examples

    task = tasks.get(cfg.task)
    held_out = {str(e.prompt) for e in task.examples("test", n=cfg.held_out, seed=seed)}
    return [e for step in range(1, cfg.steps + 1)
            for e in draw_examples(task, seed, step, 0, cfg.prompts_per_step, held_out)]


def run_r1zero(args, work: Path, timings: Timings) -> tuple[list[float], list[float]]:
    """r1zero's RL stage as the CLI runs it; returns each step's mean completion length and share of groups
    with equal rewards."""
    from dataclasses import replace

    from r1zero.stages import StageContext
    from r1zero.train import pipelined, rl

    async_level = int(args.worker.startswith("r1zero-async"))
    worker_pieces = WORKER_PIECES if args.worker == "r1zero-async-pieces" else 0
    start = pipelined.RolloutsAhead.start

    def watched(self, *a, **kw):  # the worker process's CPU time and memory count as the side's
        timings.worker_pid = self.worker.pid
        return start(self, *a, **kw)

    pipelined.RolloutsAhead.start = watched
    t_start = time.perf_counter()
    inner = rl.step_metrics

    def stamped(*a, **kw):
        timings.end_step(last=len(timings.step_ends) + 1 == args.steps)
        return inner(*a, **kw)

    rl.step_metrics = stamped
    stage = work / "rl"
    stage.mkdir(parents=True)
    skip = args.worker != "r1zero-async-all-rows"
    rl.run_rl(replace(rl_config(args), async_level=async_level, worker_pieces=worker_pieces, skip_zero_advantage=skip),
              StageContext(work, stage, "rl", 0, args.model, resume=False))
    rows = [json.loads(line) for line in (stage / "metrics.jsonl").read_text().splitlines()]
    if async_level:  # generation ran in the worker: its own timer (wall only), from the start of the run
        timings.gen_starts, timings.gen_wall = [t_start], [row["seconds_generation"] for row in rows]
    return [row["response_length"] for row in rows], [row["zero_variance_groups"] for row in rows]


def run_trl(args, work: Path, timings: Timings) -> tuple[list[float], list[float]]:
    """TRL's GRPOTrainer on the same prompts and model; returns each step's mean completion length and share
    of groups with equal rewards."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from r1zero import rewards
    from r1zero.models.io import load_model, load_tokenizer

    cfg = rl_config(args)
    examples = step_examples(cfg, seed=0)
    data = Dataset.from_dict({"prompt": [e.prompt for e in examples], "answer": [e.answer for e in examples]})
    n = cfg.prompts_per_step * cfg.group_size
    micro = n // LENGTH_BUCKETS if args.worker == "trl-micro" else n  # rows per forward/backward
    config = GRPOConfig(
        output_dir=str(work / "trl"), max_steps=cfg.steps, learning_rate=cfg.lr, lr_scheduler_type="constant",
        weight_decay=0.0, max_grad_norm=1.0, per_device_train_batch_size=micro,
        gradient_accumulation_steps=n // micro, generation_batch_size=n, num_generations=cfg.group_size, max_completion_length=cfg.max_new_tokens,
        generation_kwargs={} if args.natural_length else {"min_new_tokens": cfg.max_new_tokens}, temperature=1.0, beta=0.0, loss_type="dapo",
        epsilon=0.2, epsilon_high=0.28, num_iterations=1, reward_weights=[1.0, 0.1], router_aux_loss_coef=0.0,
        shuffle_dataset=False, use_vllm=False, use_cpu=True, bf16=False, report_to=[], logging_steps=1,
        save_strategy="no", seed=0, disable_tqdm=True, gradient_checkpointing=args.checkpointing == "on")
    lengths: list[float] = []
    equal: list[float] = []

    class Stamp(TrainerCallback):
        def on_step_end(self, _args, state, *_, **__):
            timings.end_step(last=state.global_step == cfg.steps)

        def on_log(self, _args, _state, _control, logs=None, **__):
            if logs and "completions/mean_length" in logs:
                lengths.append(logs["completions/mean_length"])
                equal.append(logs["frac_reward_zero_std"])

    model = str(args.model) if args.trl_loads_folder else load_model(args.model)
    trainer = GRPOTrainer(model=model, reward_funcs=[rewards.get("numeric"), rewards.get("format")],
                          args=config, train_dataset=data, processing_class=load_tokenizer(args.model),
                          callbacks=[Stamp()])
    trainer.train()
    return lengths, equal


def worker(args) -> None:
    """One side in this process; prints its figures as one JSON line."""
    import torch

    torch.set_num_threads(args.threads)
    if args.worker.startswith("trl"):
        import trl  # noqa: F401
    else:
        import r1zero.train.rl  # noqa: F401
    rss_imports = memory_mb("VmRSS")
    timings = Timings()
    time_generate(timings, args.worker)
    with tempfile.TemporaryDirectory() as tmp:
        run = run_r1zero if args.worker in OURS else run_trl
        lengths, equal = run(args, Path(tmp), timings)
    figures = timings.figures(lengths, args.prompts_per_step * args.group_size, equal)
    print(json.dumps({"side": args.worker, "checkpointing": args.checkpointing, **figures,
                      "rss_imports_mb": rss_imports, "threads": torch.get_num_threads()}))


def launch(side: str, checkpointing: str, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", side, "--checkpointing", checkpointing,
           "--model", str(args.model), "--prompts-per-step", str(args.prompts_per_step),
           "--group-size", str(args.group_size),
           "--max-new-tokens", str(args.max_new_tokens), "--steps", str(args.steps), "--lr", str(args.lr),
           "--threads", str(args.threads)]
    if args.trl_loads_folder:
        cmd.append("--trl-loads-folder")
    if args.natural_length:
        cmd.append("--natural-length")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TQDM_DISABLE": "1",
           "TRANSFORMERS_VERBOSITY": "error", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, check=False, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{side} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


COLUMNS = {  # key -> (header, format)
    "side": ("side", "{}"), "checkpointing": ("grad ckpt", "{}"), "mean_length": ("mean len", "{:.1f}"),
    "first_step_s": ("step 1 s", "{:.1f}"), "s_per_step": ("s/step", "{:.2f}"),
    "tokens_per_s": ("tok/s", "{:.0f}"), "gen_tokens_per_s": ("gen tok/s", "{:.0f}"),
    "cpu_s_per_step": ("CPU s/step", "{:.2f}"), "tokens_per_cpu_s": ("tok/CPU-s", "{:.0f}"),
    "gen_tokens_per_cpu_s": ("gen tok/CPU-s", "{:.0f}"), "gen_share": ("gen share", "{:.0%}"),
    "equal_groups": ("equal-reward groups", "{:.0%}"),
    "rss_imports_mb": ("RSS after imports MB", "{:.0f}"), "loop_peak_rss_mb": ("peak RSS steps MB", "{:.0f}"),
    "peak_rss_mb": ("peak RSS MB", "{:.0f}"), "peak_physical_mb": ("peak physical MB", "{:.0f}"),
}
RATIOS = ["s_per_step", "tokens_per_s", "gen_tokens_per_s", "cpu_s_per_step", "tokens_per_cpu_s",
          "gen_tokens_per_cpu_s", "loop_peak_rss_mb", "peak_rss_mb", "peak_physical_mb"]


def markdown_row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def print_table(results: list[dict], args) -> None:
    print(f"\nB={args.prompts_per_step} G={args.group_size}, completions of {args.max_new_tokens} tokens, "
          f"{args.steps} steps, {results[0]['threads']} torch thread(s); "
          f"steady state = steps 2..{args.steps}\n")
    print(markdown_row(h for h, _ in COLUMNS.values()) + "\n|" + "---|" * len(COLUMNS))
    for r in results:
        print(markdown_row(fmt.format(r[key]) for key, (_, fmt) in COLUMNS.items()))
    if any(abs(r["mean_length"] - args.max_new_tokens) > 1e-6 for r in results):
        print(f"warning: not every completion is {args.max_new_tokens} tokens long; "
              "compare tokens/s, not s/step")
    print("\nr1zero / TRL (means over rounds)\n")
    print(markdown_row(["ours", "theirs", "grad ckpt"] + [COLUMNS[k][0] for k in RATIOS])
          + "\n|" + "---|" * (len(RATIOS) + 3))
    ran = {r["side"] for r in results}
    for ckpt in dict.fromkeys(r["checkpointing"] for r in results):
        for pair in [(a, b) for a in OURS for b in THEIRS if a in ran and b in ran]:
            ratios = []
            for key in RATIOS:
                ours, theirs = ([r[key] for r in results if r["side"] == side and r["checkpointing"] == ckpt]
                                for side in pair)
                ratios.append(f"{(sum(ours) / len(ours)) / (sum(theirs) / len(theirs)):.2f}")
            print(markdown_row([*pair, ckpt] + ratios))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path,
                   help="model folder (default: a fresh tiny model of the default shape)")
    p.add_argument("--prompts-per-step", type=int, default=16)
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per side (on a busy 2-core box 2 OpenMP threads stall each other)")
    p.add_argument("--rounds", type=int, default=1, help="alternate the two sides this many times")
    p.add_argument("--trl-loads-folder", action="store_true",
                   help="give TRL the folder path to load itself, not r1zero's loaded model")
    p.add_argument("--natural-length", action="store_true",
                   help="completions end where the model ends them (default: every one max_new_tokens long)")
    p.add_argument("--checkpointing", choices=["off", "on", "both"], default="both",
                   help="gradient checkpointing on both sides (r1zero's default is off, TRL's on)")
    p.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES))
    p.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    with tempfile.TemporaryDirectory() as tmp:
        args.model = bench_model(args.model, Path(tmp) / "model", args.max_new_tokens, args.natural_length)
        print(f"load: {os.getloadavg()}")
        results = []
        settings = ["off", "on"] if args.checkpointing == "both" else [args.checkpointing]
        for _ in range(args.rounds):
            for checkpointing in settings:
                for side in args.sides:
                    results.append(launch(side, checkpointing, args))
                    print(json.dumps(results[-1]), flush=True)
        print(f"load: {os.getloadavg()}")
    print_table(results, args)


if __name__ == "__main__":
    main()
