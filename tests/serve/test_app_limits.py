"""The app in process (FastAPI's TestClient): the API key, the 429 when the engine is full, big prompts off the loop."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from r1zero.serve.app import ServerOptions, create_app
from r1zero.serve.engine import Engine, Sequence
from r1zero.serve.jobs import Generator


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_model):
    from r1zero.models.io import load_model, load_tokenizer

    return load_model(tiny_model), load_tokenizer(tiny_model)


def app_for(model_and_tokenizer, engine: Engine, **opts) -> TestClient:
    model, tok = model_and_tokenizer
    return TestClient(create_app(tok, Generator(model, tok, engine), ServerOptions("tiny", **opts)),
                      base_url="http://127.0.0.1")  # a loopback server answers loopback Host names only


def test_api_key_is_required_on_v1_only(model_and_tokenizer):
    model, tok = model_and_tokenizer
    client = app_for(model_and_tokenizer, Engine(model, tok), api_key="s3cret")
    r = client.get("/v1/models")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert client.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).json()["data"][0]["id"] == "tiny"
    assert client.get("/health").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "API key" in page.text


def test_a_full_engine_answers_429(model_and_tokenizer):
    model, tok = model_and_tokenizer
    engine = Engine(model, tok, max_batch=1, max_waiting=1)  # not started: what is queued stays queued
    engine.submit([Sequence([1, 2], lambda e: None, max_new_tokens=1) for _ in range(2)])
    client = app_for(model_and_tokenizer, engine)
    r = client.post("/v1/completions", json={"model": "tiny", "prompt": "1+1=", "max_tokens": 2})
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"


def test_chat_page_is_self_contained(model_and_tokenizer):
    model, tok = model_and_tokenizer
    html = app_for(model_and_tokenizer, Engine(model, tok)).get("/").text
    assert "<script>" in html and "/v1/chat/completions" in html
    assert "http://" not in html and "https://" not in html, "no external assets"


class ThreadRecorder:
    """A tokenizer that notes the threads it is called on."""

    def __init__(self, tokenizer):
        self.tokenizer, self.threads = tokenizer, set()

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)

    def __call__(self, *args, **kwargs):
        self.threads.add(threading.current_thread().name)
        return self.tokenizer(*args, **kwargs)


def test_big_requests_are_tokenized_off_the_event_loop(model_and_tokenizer):
    model, tok = model_and_tokenizer
    client = app_for(model_and_tokenizer, Engine(model, tok).start())
    server = client.app.state.server
    server.tokenizer, server.preparer_tokenizer = ThreadRecorder(tok), ThreadRecorder(tok)
    body = {"model": "tiny", "prompt": "1+1=", "max_tokens": 2}
    assert client.post("/v1/completions", json=body).status_code == 200
    assert client.post("/v1/completions", json={**body, "padding": "x" * 100_000}).status_code == 200
    big = client.post("/v1/completions", json={**body, "prompt": "1+1=" * 50_000})
    assert big.status_code == 400 and big.json()["error"]["code"] == "context_length_exceeded"
    assert server.preparer_tokenizer.threads == {"r1zero-prepare_0"}
    assert "r1zero-prepare_0" not in server.tokenizer.threads  # small requests stay on the loop
    server.generator.close()


def test_an_unexpected_error_is_a_500_answered_by_the_server(model_and_tokenizer):
    """Answered by the guard, not re-raised to the HTTP server (which would drop the keep-alive connection)."""
    model, tok = model_and_tokenizer
    client = app_for(model_and_tokenizer, Engine(model, tok))

    def broken(plan):
        raise RuntimeError("boom")

    client.app.state.server.generator.start = broken
    r = client.post("/v1/completions", json={"model": "tiny", "prompt": "1+1=", "max_tokens": 2})
    assert r.status_code == 500 and r.json()["error"] == {"message": "internal error: RuntimeError: boom",
                                                          "type": "server_error", "param": None, "code": None}
