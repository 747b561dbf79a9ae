"""What a web page in the user's browser cannot do to a local server: the Host, Origin and content-type checks.

The attack they stop: without an API key, any page the user opens could POST to 127.0.0.1 (a
`text/plain` request needs no CORS preflight) or rebind its own name to 127.0.0.1 (DNS rebinding).
"""

from __future__ import annotations

import http.client
import json

import httpx
import pytest

from tests.serve.conftest import ANSWER, ServerProcess

HELLO = {"model": "tiny", "messages": [{"role": "user", "content": "hello"}], "temperature": 0}
JSON = {"content-type": "application/json"}


def chat(server, headers: dict, body=HELLO) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/chat/completions", content=json.dumps(body), headers=headers, timeout=60)


def assert_refused(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == code
    assert "access-control-allow-origin" not in r.headers


def assert_answers(server) -> None:
    r = chat(server, JSON)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == ANSWER


@pytest.fixture(scope="module")
def widened(taught_model):
    """A server told to accept one more host name and one cross-origin page."""
    proc = ServerProcess(taught_model, "--served-model-name", "tiny", "--allowed-hosts", "r1zero.test",
                         "--allowed-origins", "http://app.example:3000,http://other.example")
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()


def test_the_cross_site_request_of_the_issue_is_refused(server):
    """A text/plain POST with a foreign Host and Origin, as a page on evil.example would send it."""
    r = chat(server, {"content-type": "text/plain", "host": "evil.example", "origin": "http://evil.example"})
    assert 400 <= r.status_code < 500 and r.json()["error"]["message"]
    assert_answers(server)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          None])
def test_post_needs_a_json_content_type(server, content_type):
    headers = {"content-type": content_type} if content_type else {}
    r = httpx.post(f"{server.url}/v1/chat/completions", content=json.dumps(HELLO), headers=headers, timeout=60)
    assert_refused(r, 415, "unsupported_media_type")


def test_json_content_type_with_parameters_is_accepted(server):
    r = chat(server, {"content-type": "Application/JSON; charset=utf-8"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.evil",
                                  "0.0.0.0", "192.168.1.10:8000", "[::2]"])
def test_foreign_host_names_are_refused_on_loopback(server, host):
    assert_refused(httpx.get(f"{server.url}/v1/models", headers={"host": host}), 400, "host_not_allowed")
    assert_refused(chat(server, {**JSON, "host": host}), 400, "host_not_allowed")


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:{port}", "127.0.0.1:{port}", "127.4.5.6", "[::1]",
                                  "[::1]:{port}"])
def test_loopback_host_names_are_served(server, host):
    r = httpx.get(f"{server.url}/v1/models", headers={"host": host.format(port=server.port)})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("origin", ["http://evil.example", "http://localhost:1", "http://127.0.0.1:1", "null"])
def test_cross_origin_requests_are_refused(server, origin):
    assert_refused(chat(server, {**JSON, "origin": origin}), 403, "origin_not_allowed")
    assert_refused(httpx.get(f"{server.url}/v1/models", headers={"origin": origin}), 403, "origin_not_allowed")
    preflight = httpx.options(f"{server.url}/v1/chat/completions",
                              headers={"origin": origin, "access-control-request-method": "POST"})
    assert_refused(preflight, 403, "origin_not_allowed")


def test_same_origin_requests_are_served(server):
    """What the chat page sends: its own origin, the same Host."""
    for origin in (server.url, f"http://localhost:{server.port}"):
        host = origin.removeprefix("http://")
        r = chat(server, {**JSON, "origin": origin, "host": host})
        assert r.status_code == 200, r.text
    assert httpx.get(f"{server.url}/", headers={"origin": server.url}).status_code == 200


def test_a_refusal_keeps_the_connection(server):
    """Refused before its body is read, a request still leaves its keep-alive connection usable."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("POST", "/v1/chat/completions", body=json.dumps(HELLO) + " " * 200_000,
                     headers={"content-type": "text/plain"})
        r = conn.getresponse()
        assert r.status == 415 and json.loads(r.read())["error"]["code"] == "unsupported_media_type"
        local = conn.sock.getsockname()
        conn.request("POST", "/v1/chat/completions", body=json.dumps(HELLO), headers=JSON)
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["choices"][0]["message"]["content"] == ANSWER
        assert conn.sock.getsockname() == local
    finally:
        conn.close()


def test_allowed_hosts_widen_the_loopback_names(widened):
    assert httpx.get(f"{widened.url}/v1/models", headers={"host": f"r1zero.test:{widened.port}"}).status_code == 200
    assert httpx.get(f"{widened.url}/v1/models", headers={"host": "localhost"}).status_code == 200
    assert_refused(httpx.get(f"{widened.url}/v1/models", headers={"host": "evil.example"}), 400, "host_not_allowed")


def test_allowed_origins_get_cors(widened):
    origin = "http://app.example:3000"
    preflight = httpx.options(f"{widened.url}/v1/chat/completions", headers={
        "origin": origin, "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type"})
    assert preflight.status_code in (200, 204), preflight.text
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "POST" in preflight.headers["access-control-allow-methods"]
    allowed_headers = preflight.headers["access-control-allow-headers"].lower()
    assert "content-type" in allowed_headers and "authorization" in allowed_headers
    r = chat(widened, {**JSON, "origin": origin})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == ANSWER
    assert r.headers["access-control-allow-origin"] == origin
    streamed = httpx.post(f"{widened.url}/v1/chat/completions", headers={**JSON, "origin": "http://other.example"},
                          content=json.dumps({**HELLO, "stream": True}), timeout=60)
    assert streamed.status_code == 200 and streamed.text.rstrip().endswith("data: [DONE]")
    assert streamed.headers["access-control-allow-origin"] == "http://other.example"
    assert_refused(chat(widened, {**JSON, "origin": "http://evil.example"}), 403, "origin_not_allowed")
    assert_answers(widened)
