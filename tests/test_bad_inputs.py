"""Every bad command line a new user tried (issue 15), through a real `r1zero` process.

Each case must exit 2 with at most three lines on stderr, naming what was wrong, no traceback, and
leave the run folder as it was (absent); the corrected command then runs in that same folder,
without --overwrite.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import build_tiny

TINY_RL = ["prompts_per_step=2", "group_size=2", "max_new_tokens=4", "threads=1", "checkpoint_every=0",
           "log_samples=0", "rewards={format: 1.0}"]


def raise_always(prompts, completions, **columns):
    raise ValueError("no score here")


def r1zero(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-m", "r1zero.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False, timeout=300)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A good tiny model, the same with a truncated and with a random-bytes model.safetensors, a non-UTF-8
    chat file and a good one, and a plain file standing where a folder would go."""
    root = tmp_path_factory.mktemp("bad-inputs")
    good = build_tiny(root / "good", hidden_size=32, intermediate_size=64, layers=1)
    for name, damage in (("truncated", lambda b: b[: len(b) // 2]), ("random", lambda b: os.urandom(len(b)))):
        folder = root / name
        subprocess.run(["cp", "-r", str(good), str(folder)], check=True)
        weights = folder / "model.safetensors"
        weights.write_bytes(damage(weights.read_bytes()))
    row = '{"prompt": "1+1=", "completion": "2"}\n'
    (root / "latin1.jsonl").write_bytes(('{"prompt": "caf\xe9", "completion": "1"}\n').encode("latin-1"))
    (root / "chat.jsonl").write_text(row * 8)
    (root / "a-file").write_text("not a folder")
    return root


# (name, bad arguments, what stderr names, corrected arguments); {m} = a model folder, {root} = the fixture's.
CASES = [
    ("steps=-1", ["rl", "--model", "{root}/good", "steps=-1"], "rl.steps: -1 is out of range", ["steps=1"]),
    ("steps=0", ["rl", "--model", "{root}/good", "steps=0"], "rl.steps: 0 is out of range", ["steps=1"]),
    ("lr=-1", ["rl", "--model", "{root}/good", "steps=1", "lr=-1"], "rl.lr: -1.0 is out of range", ["lr=1e-4"]),
    ("pretrain batch_size=0", ["pretrain", "--model", "{root}/good", "steps=1", "batch_size=0", "threads=1"],
     "pretrain.batch_size: 0 is out of range", ["batch_size=2"]),
    ("group_size=1", ["rl", "--model", "{root}/good", "steps=1", "group_size=1"], "rl.group_size: 1 is out of range",
     ["group_size=2"]),
    ("prompts_per_step=0", ["rl", "--model", "{root}/good", "steps=1", "prompts_per_step=0"],
     "rl.prompts_per_step: 0 is out of range", ["prompts_per_step=2"]),
    ("truncated safetensors", ["rl", "--model", "{root}/truncated", "steps=1"], "model.safetensors cannot be read",
     ["--model", "{root}/good"]),
    ("random-bytes safetensors", ["rl", "--model", "{root}/random", "steps=1"], "model.safetensors cannot be read",
     ["--model", "{root}/good"]),
    ("non-UTF-8 data", ["sft", "--model", "{root}/good", "data={root}/latin1.jsonl", "steps=1", "batch_size=2",
                        "max_length=32", "threads=1"], "is not UTF-8", ["data={root}/chat.jsonl"]),
    ("output under a file", ["rl", "--model", "{root}/good", "steps=1", "--out", "{root}/a-file/run"],
     "cannot be created", ["--out", "{root}/ok-run"]),
    ("uncreatable output", ["rl", "--model", "{root}/good", "steps=1", "--out", "/proc/r1zero-run"],
     "cannot be created", ["--out", "{root}/ok-run2"]),
    ("reward raises always", ["rl", "--model", "{root}/good", "steps=1",
                              "rewards={'tests.test_bad_inputs:raise_always': 1.0}"],
     "reward raise_always raised on every one", ["rewards={format: 1.0}"]),
    ("vllm with top_p < 1", ["rl", "--model", "{root}/good", "steps=1", "sampler=vllm", "top_p=0.9"],
     "top_p < 1 or top_k > 0", ["sampler=hf"]),
    ("bad device", ["rl", "--model", "{root}/good", "steps=1", "device=gpu"], "device 'gpu'", ["device=auto"]),
    ("min_digits > max_digits", ["pretrain", "--model", "{root}/good", "steps=1", "batch_size=2", "min_digits=4",
                                 "max_digits=2", "threads=1"], "min_digits 4 > max_digits 2", ["min_digits=1"]),
]


def fill(args, root):
    return [a.replace("{root}", str(root)) for a in args]


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")} if folder.is_dir() else {}


# Each case's corrected command runs here for a few representative cases; for all of them with -m slow
# (each is a real training process: ~6 s apiece on 2 cores).
FIXED_BY_DEFAULT = {"steps=0", "truncated safetensors", "output under a file", "reward raises always"}


def run_bad(folders, tmp_path, bad, expected) -> list[str]:
    """Run the bad command; check exit 2, one to three stderr lines naming it, no traceback, no folder."""
    bad = fill(bad, folders)
    extra = [] if "--out" in bad else ["--out", str(tmp_path / "run")]
    tiny = [a for a in TINY_RL if bad[0] == "rl" and a.split("=")[0] not in {b.split("=")[0] for b in bad}]
    res = r1zero(*bad, *extra, *tiny, cwd=tmp_path)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr[-2000:]
    assert 1 <= len(lines) <= 3 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert any(expected in line for line in lines), res.stderr
    assert not (tmp_path / "run").exists(), "a failed start left a run folder"
    return [*bad, *extra, *tiny]


def run_fixed(folders, tmp_path, bad, fix) -> None:
    """The corrected command: the bad arguments with the fix applied, in the same place, no --overwrite."""
    fixed = fill(fix, folders)
    keys = {a.split("=")[0] for a in fixed if "=" in a}
    flags = {fixed[i] for i in range(len(fixed)) if fixed[i].startswith("--")}
    kept, skip = [], False
    for a in bad:
        if skip:
            skip = False
            continue
        if a in flags:
            skip = True
            continue
        if "=" not in a or a.split("=")[0] not in keys:
            kept.append(a)
    good = r1zero(*kept, *fixed, cwd=tmp_path)
    assert good.returncode == 0, good.stderr[-2000:]
    assert "device cpu" in good.stdout.splitlines()[0] or "device cuda" in good.stdout.splitlines()[0]


@pytest.mark.parametrize("name, bad, expected, fix", CASES, ids=[c[0] for c in CASES])
def test_a_bad_input_exits_2_with_one_line(folders, tmp_path, name, bad, expected, fix):
    ran = run_bad(folders, tmp_path, bad, expected)
    if name in FIXED_BY_DEFAULT:
        run_fixed(folders, tmp_path, ran, fix)


@pytest.mark.slow
@pytest.mark.parametrize("name, bad, expected, fix", [c for c in CASES if c[0] not in FIXED_BY_DEFAULT],
                         ids=[c[0] for c in CASES if c[0] not in FIXED_BY_DEFAULT])
def test_the_corrected_command_then_runs(folders, tmp_path, name, bad, expected, fix):
    run_fixed(folders, tmp_path, run_bad(folders, tmp_path, bad, expected), fix)


def test_a_failed_resume_changes_nothing(folders, tmp_path):
    """A bad override on --resume of a finished run: exit 2 and the folder untouched."""
    run = tmp_path / "run"
    assert r1zero("rl", "--model", folders / "good", "steps=1", "--out", run, *TINY_RL, cwd=tmp_path).returncode == 0
    before = snapshot(run)
    res = r1zero("rl", "--model", folders / "good", "steps=-1", "--out", run, "--resume", *TINY_RL, cwd=tmp_path)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) <= 3
    assert snapshot(run) == before
    res = r1zero("rl", "--model", folders / "truncated", "steps=2", "--out", run, "--overwrite", *TINY_RL, cwd=tmp_path)
    assert res.returncode == 2 and snapshot(run) == before, res.stderr


def test_config_shows_each_range():
    res = subprocess.run([sys.executable, "-m", "r1zero.cli", "config", "rl"], capture_output=True, text=True,
                         check=True)
    assert "group_size = 8 in [2, inf)" in res.stdout and "top_p = 1.0 in (0, 1]" in res.stdout
