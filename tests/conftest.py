"""Shared fixtures: tiny model folders built once per test session, and the shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("R1ZERO_DATA", REPO.parent / "shared" / "data"))

# Small enough that a training step takes milliseconds; still MLA + MoE with a shared expert.
TINY_SHAPE = {"arch": "deepseek_v3", "vocab_size": 384, "hidden_size": 64, "layers": 2, "heads": 4, "intermediate_size": 128,
                  "experts": 4, "experts_per_token": 2, "shared_experts": 1, "moe_intermediate_size": 32, "kv_lora_rank": 16,
                  "max_position_embeddings": 128}


def sigkill_once_written(cmd: list[str], marker: Path, timeout_s: float = 240) -> None:
    """Start `cmd`, SIGKILL it as soon as `marker` exists (e.g. a checkpoint), and wait for it."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout_s
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def build_tiny(out: Path, **overrides) -> Path:
    from r1zero.models.build import ModelShape, build_model

    return build_model(ModelShape(**{**TINY_SHAPE, **overrides}), out, seed=0)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A freshly built (untrained) tiny DeepSeek-V3 model folder."""
    return build_tiny(tmp_path_factory.mktemp("models") / "tiny-dsv3")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent (CI keeps it beside the clone)")
    return SHARED_DATA


def pytest_configure(config):
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()
