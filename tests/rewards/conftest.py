"""Shared helpers for the reward tests: where the datasets are, and reading them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# The folder `shared/data` beside the repository clone (GSM8K, MATH-500, HumanEval, MBPP, Countdown).
DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def read_jsonl(relative: str) -> list[dict]:
    """Rows of a data file; the test is skipped, saying why, when the file is absent."""
    path = DATA_DIR / relative
    if not path.is_file():
        pytest.skip(f"dataset {relative} not found under {DATA_DIR.resolve()} (the shared data folder)")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture
def read_data():
    """`read_data("math500/test.jsonl")` -> rows; skips the test when the shared data is absent."""
    return read_jsonl
