"""The report's comparisons (r1zero/r1_claims.py) from a hand-made run folder: figures read from the right
stages, each claim held or not by its plain comparison, noise judged on the paired per-problem difference."""

import json

import pytest
import yaml

from r1zero.errors import UserError
from r1zero.r1_claims import claims_section

CLAIMS = {"r1_zero_vs_r1": {"r1_zero": "ev_zero", "r1": "ev_r1"},
          "distillation_vs_rl": {"base": "ev_sb", "distilled": ["distill", "ev_d"], "rl": ["rl_s", "ev_rs"]},
          "ppo_vs_grpo": {"grpo": ["rl_zero", "ev_zero"], "ppo": ["rl_ppo", "ev_ppo"]},
          "test_time": {"votes": "ev_votes", "budget_forcing": ["think_4", "ev_zero"]}}


def write(run, sid, name, data):
    (run / sid).mkdir(exist_ok=True)
    path = run / sid / name
    if name.endswith(".jsonl"):
        path.write_text("".join(json.dumps(row) + "\n" for row in data))
    else:
        path.write_text(json.dumps(data))


def evaluation(run, sid, per_item, readable=0.5, think=20.0, **extra):
    """An eval stage whose items have these pass@1 values."""
    p = sum(per_item) / len(per_item)
    write(run, sid, "eval.json", {"sampled_pass@1": p, "greedy_pass@1": p, "mean_length": 30.0,
                                  "readability_share": readable, "format_rate": 1.0, "mean_think_length": think,
                                  "problems": len(per_item), "samples": 4, **extra})
    write(run, sid, "items.jsonl", [{"id": str(i), "pass@1": v} for i, v in enumerate(per_item)])


@pytest.fixture
def run(tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"think_4": {"max_think_tokens": 4}}))
    evaluation(tmp_path, "ev_zero", [1.0, 0.5, 0.5, 0.0], readable=0.6)  # 0.5
    evaluation(tmp_path, "ev_r1", [1.0, 0.5, 0.75, 0.0], readable=0.9)  # 0.5625: +1/16, one problem differs
    evaluation(tmp_path, "ev_sb", [0.0, 0.25, 0.0, 0.0])
    evaluation(tmp_path, "ev_d", [0.5, 0.5, 0.25, 0.25])
    evaluation(tmp_path, "ev_rs", [1.0, 1.0, 0.5, 0.5])
    evaluation(tmp_path, "ev_ppo", [1.0, 0.75, 0.5, 0.0])
    evaluation(tmp_path, "think_4", [0.5, 0.0, 0.0, 0.0], think=4.0)
    evaluation(tmp_path, "ev_votes", [1.0, 0.5, 0.5, 0.0], **{"cons@1": 0.5, "cons@2": 0.5, "cons@4": 0.75,
                                                              "pass@1": 0.5, "pass@2": 0.7, "pass@4": 0.75})
    for sid, flops, cpu, peak, steps in (("distill", 1e12, 30.0, None, 0), ("rl_s", 1.1e12, 40.0, None, 10),
                                         ("rl_zero", 2e12, 100.0, 500 * 2**20, 10),
                                         ("rl_ppo", 4e12, 180.0, 600 * 2**20, 10)):
        write(tmp_path, sid, "budget.json", {"flops_total": flops, "cpu_seconds": cpu, "peak_rss_bytes": peak})
        if steps:
            write(tmp_path, sid, "metrics.jsonl", [{"step": i + 1} for i in range(steps)])
    return tmp_path


def test_every_comparison_reads_its_stages_and_judges_its_claim(run):
    text = "\n".join(claims_section(run, CLAIMS, run))
    record = json.loads((run / "claims.json").read_text())
    held = {name: [v["held"] for v in c["verdicts"]] for name, c in record.items()}
    # R1 reads better (0.9 vs 0.6) and scores 0.5625 vs 0.5: the second within noise (one problem moved)
    assert held["r1_zero_vs_r1"] == [True, True] and "within sampling noise" in text
    # the RL student (0.75) beats the distilled one (0.375) at 1.1x the FLOPs: the claim fails, and says so
    assert held["distillation_vs_rl"] == [False] and "1.10x the distillation's FLOPs" in text
    assert record["distillation_vs_rl"]["figures"]["rl"]["flops"] == 1.1e12
    # GRPO 0.5 vs PPO 0.5625 (not held), 10 vs 18 CPU s per step, 500 vs 600 MB (both held)
    assert held["ppo_vs_grpo"] == [False, True, True]
    assert record["ppo_vs_grpo"]["figures"]["ppo"]["seconds_per_step"] == 18.0
    # cons@4 0.75 > pass@1 0.5; 20 thinking tokens (ev_zero, 0.5) beat 4 (think_4, 0.125)
    assert held["test_time"] == [True, True] and (run / "test_time.png").is_file()
    assert [f["stage"] for f in record["test_time"]["figures"]["budget_forcing"]] == ["think_4", "ev_zero"]
    for title in ("R1-Zero vs R1", "Distillation vs RL", "Why GRPO", "Test-time scaling"):
        assert title in text


def test_a_stage_without_a_budget_shows_no_ratio(run):
    (run / "distill" / "budget.json").unlink()
    text = "\n".join(claims_section(run, {"distillation_vs_rl": CLAIMS["distillation_vs_rl"]}, run))
    assert "FLOPs not metered for both" in text and "| distilled (ev_d) | 0.375 | - | - |" in text


def test_an_unknown_comparison_is_a_user_error(run):
    with pytest.raises(UserError, match="unknown comparison 'sft_vs_rl'"):
        claims_section(run, {"sft_vs_rl": {}}, run)
