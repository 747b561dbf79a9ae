"""One torch thread for the eval tests: the tiny models' matmuls gain nothing from a second thread,
and on a shared 2-core machine a second thread spins (decoding measured 25 ms vs 0.2 ms a linear)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
