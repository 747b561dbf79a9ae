"""Helpers for the task tests: a data file from the shared folder, or a skip that says which."""

from __future__ import annotations

from pathlib import Path

import pytest


def need(shared_data: Path, relative: str) -> Path:
    path = shared_data / relative
    if not path.is_file():
        pytest.skip(f"{path} is absent from the shared data folder")
    return path
