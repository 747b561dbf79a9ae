"""Budget tests never probe this machine: the cache goes to a temporary folder, peaks are given."""

import pytest


@pytest.fixture(autouse=True)
def budget_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("R1ZERO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
