"""report_to: TensorBoard event files and the W&B offline run folder hold the step metrics that
metrics.jsonl holds (offline, nothing leaves the machine)."""

import json
import struct

import pytest

from r1zero.config import PretrainConfig
from r1zero.errors import UserError
from r1zero.stages import StageContext
from r1zero.train.pretrain import run_pretrain
from r1zero.train.trackers import make_trackers


def run_tiny_pretrain(tmp_path, tiny_model, report_to):
    cfg = PretrainConfig(steps=4, batch_size=4, log_every=2, checkpoint_every=0, report_to=report_to)
    ctx = StageContext(tmp_path, tmp_path / "pretrain", "pretrain", 0, tiny_model, False)
    ctx.stage_dir.mkdir()
    run_pretrain(cfg, ctx)
    return ctx.stage_dir, [json.loads(line) for line in (ctx.stage_dir / "metrics.jsonl").read_text().splitlines()]


def wandb_records(path):
    """The protobuf records of a .wandb file: a 7-byte header, then LevelDB-log blocks of 32 KiB whose
    records (7-byte header: checksum, length, kind) may be split across blocks (first/middle/last)."""
    data, pos, block, pieces = path.read_bytes(), 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0:
            break
        pieces += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # full, or the last piece of a split record
            yield pieces
            pieces = b""


def test_tensorboard_event_files_hold_the_step_metrics(tmp_path, tiny_model):
    pytest.importorskip("tensorboard", reason="optional: pip install 'r1zero[trackers]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    stage_dir, rows = run_tiny_pretrain(tmp_path, tiny_model, ["tensorboard"])
    events = EventAccumulator(str(stage_dir / "tensorboard"))
    events.Reload()
    loss = {e.step: e.value for e in events.Scalars("loss")}
    assert loss == pytest.approx({r["step"]: r["loss"] for r in rows}, abs=1e-5)
    assert {"lr", "grad_norm", "tokens_per_s"} <= set(events.Tags()["scalars"])


def test_wandb_offline_run_holds_the_step_metrics(tmp_path, tiny_model, monkeypatch):
    pytest.importorskip("wandb", reason="optional: pip install 'r1zero[trackers]'")
    from wandb.proto import wandb_internal_pb2

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    stage_dir, rows = run_tiny_pretrain(tmp_path, tiny_model, ["wandb"])
    [run_file] = (stage_dir / "wandb").glob("offline-run-*/run-*.wandb")
    history = {}
    for raw in wandb_records(run_file):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
            history[items["_step"]] = items
    assert {step: h["loss"] for step, h in history.items()} == pytest.approx(
        {r["step"]: r["loss"] for r in rows}, abs=1e-5)


def test_an_unknown_tracker_names_the_valid_ones(tmp_path):
    with pytest.raises(UserError, match="tensorboard, wandb"):
        make_trackers(["mlflw"], tmp_path, "rl", {})
