"""Bad requests get 4xx JSON in OpenAI's error shape, and the server keeps serving."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import httpx
import openai
import pytest

from tests.serve.conftest import ANSWER

HELLO = [{"role": "user", "content": "hello"}]


def post(server, path: str, body, **kw) -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(f"{server.url}{path}", content=content, headers={"content-type": "application/json"},
                      timeout=60, **kw)


def assert_error(r: httpx.Response, status: int, param: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert error["message"] and error["type"]
    if param is not None:
        assert error["param"] == param
    return error


@pytest.mark.parametrize("body, status, param", [
    (b'{"model": "tiny", "messages": [', 400, None),  # malformed JSON
    (b'[1, 2]', 400, None),  # JSON, but not an object
    ({"model": "nope", "messages": HELLO}, 404, "model"),
    ({"model": "tiny", "messages": HELLO, "max_tokens": -5}, 400, "max_tokens"),
    ({"model": "tiny", "messages": HELLO, "n": 1000}, 400, "n"),
    ({"model": "tiny", "messages": []}, 400, "messages"),
    ({"model": "tiny"}, 400, "messages"),
    ({"model": "tiny", "messages": [{"role": "robot", "content": "hi"}]}, 400, "messages.0.role"),
    ({"model": "tiny", "messages": HELLO, "temperature": 9}, 400, "temperature"),
    ({"model": "tiny", "messages": HELLO, "stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
    ({"model": "tiny", "messages": HELLO, "logprobs": True}, 400, "logprobs"),
    ({"model": "tiny", "messages": HELLO, "max_tokens": 100_000}, 400, "messages"),  # past the context
])
def test_bad_chat_requests(server, body, status, param):
    assert_error(post(server, "/v1/chat/completions", body), status, param)


def test_bad_completion_requests(server):
    assert_error(post(server, "/v1/completions", {"model": "tiny", "prompt": []}), 400, "prompt")
    assert_error(post(server, "/v1/completions", {"model": "tiny", "prompt": "x", "echo": True}), 400, "echo")


def test_oversized_body_gets_413(server):
    body = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "x" * 10_000_000}]})
    error = assert_error(post(server, "/v1/chat/completions", body), 413)
    assert error["code"] == "request_too_large"


def test_unknown_route_and_method(server):
    assert_error(httpx.get(f"{server.url}/v1/nothing"), 404)
    assert_error(httpx.get(f"{server.url}/v1/chat/completions"), 405)


def test_openai_client_sees_the_errors(server):
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=60)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    with pytest.raises(openai.BadRequestError, match="n: at most"):
        client.chat.completions.create(model="tiny", messages=HELLO, n=1000)


def test_server_keeps_serving_after_bad_requests(server):
    for body in (b"{", b"\xff\xfe", {"model": "tiny", "messages": HELLO, "n": 1000}):
        assert post(server, "/v1/chat/completions", body).status_code == 400
    r = post(server, "/v1/chat/completions", {"model": "tiny", "messages": HELLO, "temperature": 0})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == ANSWER


def test_deeply_nested_json_is_a_400_and_the_connection_stays_usable(server):
    """100,000 nested arrays: a 400 JSON error, no traceback in the log, the same keep-alive connection answers next."""
    log = Path(server.log.name)
    logged = log.stat().st_size
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("POST", "/v1/chat/completions", body=b"[" * 100_000 + b"]" * 100_000,
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        body, local = r.read(), conn.sock.getsockname()
        assert r.status == 400, body
        assert r.getheader("content-type").startswith("application/json")
        assert "nested too deeply" in json.loads(body)["error"]["message"]
        conn.request("POST", "/v1/chat/completions", headers={"Content-Type": "application/json"},
                     body=json.dumps({"model": "tiny", "messages": HELLO, "temperature": 0}))
        r = conn.getresponse()
        reply = json.loads(r.read())
        assert conn.sock.getsockname() == local, "the connection was closed after the 400"
        assert r.status == 200 and reply["choices"][0]["message"]["content"] == ANSWER
    finally:
        conn.close()
    assert "Traceback" not in log.read_text()[logged:]


def test_big_bodies_are_answered_like_small_ones(server):
    """Bodies over 16 KiB are prepared on a worker thread: the same answers, the same errors."""
    padded = {"model": "tiny", "messages": HELLO, "temperature": 0, "metadata": "x" * 50_000}  # unknown field: ignored
    r = post(server, "/v1/chat/completions", padded)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == ANSWER
    too_long = [{"role": "user", "content": "1+1=" * 50_000}]
    error = assert_error(post(server, "/v1/chat/completions", {"model": "tiny", "messages": too_long}), 400, "messages")
    assert error["code"] == "context_length_exceeded"
    assert_error(post(server, "/v1/completions", {"model": "nope", "prompt": "1+1=" * 50_000}), 404, "model")
    assert_error(post(server, "/v1/completions", b'{"model": "tiny", "prompt": "' + b"x" * 50_000), 400)
