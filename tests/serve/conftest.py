"""Fixtures for the serving tests: a tiny model taught one reasoning reply, and a real server process.

An untrained model babbles, and a pretrained arithmetic model takes minutes to make; the session's
tiny model trained for a few seconds to answer every chat turn with `REPLY` emits real `<think>` and `<answer>`
tags, which is what the reasoning split, the usage counts and the chat page need to show.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO

REASONING = "2+2=4"
ANSWER = "4"
REPLY = f"<think>{REASONING}</think><answer>{ANSWER}</answer>"
USERS = ["hello", "hi", "what is 2+2?", "tell me"]


def teach_reply(model_dir: Path, out: Path, steps: int = 40) -> Path:
    """Train `model_dir` to answer each of USERS with REPLY (loss on the reply only); save to `out`."""
    import torch

    from r1zero.models.io import load_model, load_tokenizer, save_model_folder

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model trains fastest on one thread, and the CI machine is shared
    torch.manual_seed(0)
    model, tok = load_model(model_dir), load_tokenizer(model_dir)
    model.train()
    rows = []
    for user in USERS:
        prompt = tok.apply_chat_template([{"role": "user", "content": user}], add_generation_prompt=True, tokenize=False)
        p = tok(prompt, add_special_tokens=False)["input_ids"]
        rows.append((p, tok(REPLY, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]))
    fit_replies(model, tok.pad_token_id, rows, steps)
    torch.set_num_threads(threads)
    model.eval()
    return save_model_folder(model, tok, out)


def fit_replies(model, pad_id: int, rows: list[tuple[list[int], list[int]]], steps: int) -> None:
    """`steps` AdamW steps (lr 1e-2) on (prompt ids, reply ids) rows in one batch, loss on the replies only."""
    import torch

    width = max(len(p) + len(r) for p, r in rows)
    ids = torch.full((len(rows), width), pad_id)  # (B, T) right-padded
    labels = torch.full((len(rows), width), -100)  # (B, T) loss on the reply only
    for i, (p, r) in enumerate(rows):
        ids[i, : len(p) + len(r)] = torch.tensor(p + r)
        labels[i, len(p) : len(p) + len(r)] = torch.tensor(r)
    mask = (ids != pad_id).long()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@pytest.fixture(scope="session")
def taught_model(tiny_model, tmp_path_factory) -> Path:
    return teach_reply(tiny_model, tmp_path_factory.mktemp("serve") / "taught")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`r1zero serve` in a subprocess on a free loopback port; `url` is its base URL."""

    def __init__(self, model: Path, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(model.parent / f"server-{self.port}.log", "w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "r1zero.cli", "serve", str(model), "--port",
                                      str(self.port), "--threads", "1", *extra], cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def wait_ready(self, timeout: float = 120) -> ServerProcess:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log.read()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"server did not answer /health within {timeout} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def server(taught_model):
    """A server for the taught model, with small bounds so the limits are easy to reach."""
    proc = ServerProcess(taught_model, "--served-model-name", "tiny", "--max-n", "4", "--max-body-bytes", "262144",
                         "--max-batch", "8")
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def taught_tokenizer(taught_model):
    from r1zero.models.io import load_tokenizer

    return load_tokenizer(taught_model)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """In-process generation on one thread: tiny models gain nothing from two, and lose much on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
