"""`r1zero plan`: JSON for a known GPU (roofline, no probing), exit status 1 when a stage does not fit."""

import argparse
import json

from r1zero.budget.cli import add_commands
from r1zero.budget.devices import get_device
from tests.budget.test_plan import tiny_recipe


def run(argv):
    p = argparse.ArgumentParser(prog="r1zero")
    add_commands(p.add_subparsers(dest="command", required=True))
    args, extra = p.parse_known_args(argv)
    args.overrides += extra
    return args.func(args)


def write_recipe(tmp_path):
    import yaml

    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe().to_dict()))
    return str(path)


def test_plan_json_on_a_gpu(tmp_path, capsys):
    assert run(["plan", write_recipe(tmp_path), "--device", "h100", "--json", "rl.steps=3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["device"] == "h100" and out["dtype"] == "bfloat16" and out["price_per_hour"] == 2.5
    stages = {s["stage"]: s for s in out["stages"]}
    assert all(s["fits"] for s in stages.values()) and stages["rl"]["seconds_total"] > 0


def test_plan_says_what_does_not_fit(tmp_path, capsys):
    # 0.502 GB: the CUDA context (0.5 GB) and 2 MB, less than the tiny RL stage's fp32 training needs
    # (its update runs in 4 length pieces, so 5 MB fit).
    code = run(["plan", write_recipe(tmp_path), "--device", "tiny", "--memory", "0.502", "--peak-tflops", "1",
                "--dtype", "float32"])
    out = capsys.readouterr().out
    assert code == 1 and "- rl does not fit; to fit: rl." in out
    assert "KV cache: 192 B/token in fp32 (MLA latent)" in out


def test_unknown_device_is_a_user_error():
    import pytest

    from r1zero.errors import UserError

    with pytest.raises(UserError, match="unknown device 'nope'"):
        get_device("nope")


def test_price_from_the_environment(monkeypatch):
    monkeypatch.setenv("R1ZERO_PRICE_PER_HOUR", "0.9")
    assert get_device("t4").price_per_hour == 0.9
    assert get_device("t4", price_per_hour=0.2).price_per_hour == 0.2
    assert get_device("a100-80gb", memory_gb=70).memory_gb == 70


def test_against_a_run_folder_shows_predicted_and_measured_seconds(tmp_path):
    import json as _json

    from r1zero.budget.cli import against_table

    class Plan:  # what the table reads of a StagePlan
        def __init__(self, stage, seconds):
            self.stage, self.total_seconds = stage, seconds

    (tmp_path / "pretrain").mkdir()
    (tmp_path / "pretrain" / "budget.json").write_text(_json.dumps({"cpu_seconds": 80.0, "seconds": 120.0}))
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "done.json").write_text(_json.dumps({"seconds": 0.5}))
    table = against_table([Plan("pretrain", 100.0), Plan("report", 0.5), Plan("eval", 3.0)], tmp_path)
    assert "| pretrain | 100.0 | 80.0 | +25% | CPU |" in table and "| report | 0.5 | 0.5 | +0% | wall |" in table
    assert "| eval | 3.0 | - | - | - |" in table
    two = Plan("pretrain", 100.0)
    two.processes = 2  # a helper computed beside it: its process's CPU time is not the stage's
    assert "| pretrain | 100.0 | 120.0 | -17% | wall |" in against_table([two], tmp_path)
