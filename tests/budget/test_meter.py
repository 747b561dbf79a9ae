"""StageMeter accounting, budget.json, and the run's budget table."""

import json

import pytest

from r1zero.budget.devices import Device
from r1zero.budget.flops import model_counts
from r1zero.budget.meter import StageMeter, budget_table, read_budgets
from tests.budget.test_flops import DENSE, MOE

CPU = Device("cpu", 8, 0.05, 0.05, 20, 0.10, baseline_gb=0.42)  # peak 50 GFLOP/s


def test_meter_counts_tokens_and_model_flops(tmp_path):
    meter = StageMeter(MOE, device=CPU, stage="rl")
    meter.add_train_tokens(100, seq_len=15)
    meter.add_forward_tokens(40, seq_len=15, kind="generation")
    meter.add_forward_tokens(40, seq_len=15, kind="generation")
    c = model_counts(MOE)
    s = meter.summary()
    assert s["tokens"] == {"train": 100, "generation": 80} and s["tokens_total"] == 180
    assert s["flops"]["train"] == pytest.approx(100 * 3 * (2 * c.active_params + c.attention_flops_per_key() * 8))
    assert s["flops"]["generation"] == pytest.approx(80 * (2 * c.active_params + c.attention_flops_per_key() * 8))
    assert s["mfu"] == pytest.approx(s["flops_per_s"] / 5e10)
    assert s["cost"] == pytest.approx(s["device_hours"] * 0.10)


def test_phases_and_budget_json(tmp_path, capsys):
    meter = StageMeter(DENSE, device=CPU, price_per_hour=2.0, stage="pretrain")
    with meter.phase("train"):
        meter.add_train_tokens(10)
    s = meter.write(tmp_path / "pretrain")
    assert "budget:" in capsys.readouterr().out
    saved = json.loads((tmp_path / "pretrain" / "budget.json").read_text())
    assert saved["price_per_hour"] == 2.0 and set(saved["phases"]) == {"train", "other"}
    assert saved["phases"]["train"] <= saved["seconds"] and saved["flops_total"] == s["flops_total"]


def fake_budget(stage: str, flops: float, seconds: float, tokens: int) -> dict:
    return {"stage": stage, "device": "cpu", "tokens_total": tokens, "flops_total": flops, "seconds": seconds,
            "device_hours": seconds / 3600, "peak_flops_per_s": 1e10, "mfu": flops / seconds / 1e10,
            "price_per_hour": 0.1, "cost": seconds / 3600 * 0.1}


def test_budget_table_sums_the_stages_in_run_order(tmp_path):
    (tmp_path / "config.yaml").write_text("stages: [pretrain, rl, report]\n")
    for sid, flops, secs, tokens in (("rl", 2e12, 200, 5000), ("pretrain", 1e12, 100, 3000)):
        (tmp_path / sid).mkdir()
        peak = {"peak_rss_bytes": 500 * 2**20} if sid == "pretrain" else {}
        (tmp_path / sid / "budget.json").write_text(json.dumps(fake_budget(sid, flops, secs, tokens) | peak))
    assert list(read_budgets(tmp_path)) == ["pretrain", "rl"]
    table = budget_table(tmp_path)
    lines = table.splitlines()
    assert lines[0] == "| stage | tokens | FLOPs | seconds | CPU-hours | MFU | peak memory | cost |"
    assert lines[2].startswith("| pretrain | 3.00k | 1.00T | 100.0 | 0.0278 | 100.0% | 500 MB |")
    assert lines[3].startswith("| rl | 5.00k | 2.00T | 200.0 | 0.0556 | 100.0% | - |")  # a budget.json without it
    assert lines[4] == "| **total** | 8.00k | 3.00T | 300.0 | 0.0833 | 100.0% | 500 MB | $0.0083 |"
    assert "$0.10 per device-hour" in table
    assert budget_table(tmp_path / "nothing") == ""


def test_sequences_count_attention_exactly_and_lora_training():
    meter = StageMeter(DENSE, device=CPU, lora_rank=4)
    meter.add_sequences([3, 5], kind="generation")
    c = model_counts(DENSE)
    keys = 3 * 4 / 2 + 5 * 6 / 2  # each token attends to itself and those before it
    assert meter.tokens == {"generation": 8}
    assert meter.flops["generation"] == 8 * 2 * c.active_params + c.attention_flops_per_key() * keys
    meter.add_sequences([4], kind="train", train=True)
    assert meter.flops["train"] == c.train_flops(4, 2.5, lora_rank=4)


def test_nested_phases_are_taken_out_of_other_once():
    import time

    meter = StageMeter(DENSE, device=CPU)
    with meter.phase("step"), meter.phase("generation"):
        time.sleep(0.02)
    s = meter.summary()
    assert s["phases"]["step"] >= s["phases"]["generation"] >= 0.02
    assert s["phases"]["other"] == pytest.approx(s["seconds"] - s["phases"]["step"], abs=2e-3)


def test_peak_memory_is_the_stage_own():
    """A stage's peak resident memory starts afresh with its meter: an earlier 200 MB peak is forgotten,
    one during the stage counts."""
    import sys

    if not sys.platform.startswith("linux"):
        return
    held = b"\x01" * (200 * 2**20)  # written, so resident
    del held
    meter = StageMeter(DENSE, device=CPU)
    before = meter.summary()["peak_rss_bytes"]
    held = b"\x02" * (200 * 2**20)
    during = meter.summary()["peak_rss_bytes"]
    del held
    assert during - before >= 190 * 2**20


def test_memory_an_earlier_stage_freed_does_not_count():
    """Small freed blocks stay in glibc's heap, resident; a new meter hands them back before its peak starts."""
    import sys

    if not sys.platform.startswith("linux"):
        return
    blocks = [bytes([1]) * 1000 for _ in range(200_000)]  # ~200 MB in 1 kB blocks
    alive = StageMeter(DENSE, device=CPU).summary()["peak_rss_bytes"]
    kept = blocks[::100]  # a few stay, so the heap cannot shrink from its top by itself
    del blocks
    assert StageMeter(DENSE, device=CPU).summary()["peak_rss_bytes"] < alive - 150 * 2**20
    assert len(kept) == 2000
