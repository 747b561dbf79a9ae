"""What every HTTP request passes before the routes: the browser-facing checks, and a last-resort 500.

Defaults as Jupyter's, so that a web page open in the user's browser cannot drive the local API
(cross-site requests, DNS rebinding), whether or not an API key is set:

- A POST must declare a JSON body (`Content-Type: application/json`, parameters allowed), else 415.
  Browsers send `text/plain` and form bodies cross-site without asking first; JSON needs a preflight.
- When the server is bound to a loopback address, `Host` must be a loopback name (localhost,
  127.x.y.z, [::1], any port) or one of `allowed_hosts`, else 400: a name rebound to 127.0.0.1 still
  arrives with its own name in `Host`.
- A request whose `Origin` is not the server's own (its host and port are not `Host`'s) gets 403
  unless the origin is in `allowed_origins`; those get CORS headers and their preflights answered.

A request without `Host` (HTTP/1.0) or without `Origin` (not a browser's cross-site request) passes
those two checks. Refusals are JSON in OpenAI's error shape, like every other error of the server.

An exception that no route turned into an HTTP error becomes a 500 JSON answer with its traceback
logged, and the connection stays open: Starlette's own handler re-raises after answering, and
uvicorn then drops the keep-alive connection.
"""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response

from r1zero.serve.protocol import APIError

log = logging.getLogger(__name__)

PREFLIGHT_MAX_AGE = "600"  # seconds a browser may cache a preflight's answer


def host_name(host: str) -> str:
    """The name in a Host header, without its port: `[::1]:8000` -> `::1`, `LocalHost:80` -> `localhost`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def is_loopback(name: str) -> bool:
    """`localhost`, 127.0.0.0/8 or ::1 (a name as `host_name` gives it, or an address to bind)."""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class RequestGuard:
    """ASGI middleware: the Host, Origin and content-type checks, CORS for allowed origins, the catch-all 500."""

    def __init__(self, app, *, bind_host: str, allowed_hosts=(), allowed_origins=()):
        self.app = app
        self.loopback = is_loopback(host_name(bind_host))
        self.hosts = {host_name(h) for h in allowed_hosts}
        self.origins = {o.strip().lower().rstrip("/") for o in allowed_origins}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        try:
            cors_origin = self.check(scope["method"], headers)
        except APIError as e:
            return await JSONResponse(e.body(), status_code=e.status)(scope, receive, send)
        if cors_origin and scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            return await self.preflight(cors_origin, headers)(scope, receive, send)
        started = False

        async def send_with_cors(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if cors_origin:
                    message["headers"] = [*message.get("headers", []), (b"access-control-allow-origin",
                                                                        cors_origin.encode()), (b"vary", b"Origin")]
            await send(message)

        try:
            await self.app(scope, receive, send_with_cors)
        except Exception as e:
            if started:
                raise  # half an answer is out: nothing left to do but let the server close the connection
            log.exception("%s %s failed", scope["method"], scope["path"])
            error = APIError(500, f"internal error: {type(e).__name__}: {e}", kind="server_error")
            await JSONResponse(error.body(), status_code=500)(scope, receive, send)

    def check(self, method: str, headers: Headers) -> str | None:
        """Raise APIError for a refused request; return the origin to answer with CORS headers, if any."""
        host = headers.get("host")
        if self.loopback and host is not None and not self.allowed_host(host):
            raise APIError(400, f"Host {host!r} is not allowed: this server is bound to loopback and answers "
                                f"loopback names only (localhost, 127.0.0.1, [::1]); start it with "
                                f"--allowed-hosts {host_name(host) or 'NAME'} to accept this one",
                           code="host_not_allowed")
        origin = headers.get("origin")
        cors_origin = None
        if origin is not None and urlsplit(origin).netloc.lower() != (host or "").strip().lower():
            if "*" not in self.origins and origin.strip().lower().rstrip("/") not in self.origins:
                raise APIError(403, f"cross-origin request from {origin!r} refused; start the server with "
                                    f"--allowed-origins {origin} to allow that page", code="origin_not_allowed")
            cors_origin = origin
        media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        if method == "POST" and media_type != "application/json":
            raise APIError(415, f"request bodies must be JSON: send 'Content-Type: application/json' "
                                f"(got {media_type or 'none'!r})", code="unsupported_media_type")
        return cors_origin

    def allowed_host(self, host: str) -> bool:
        name = host_name(host)
        return is_loopback(name) or name in self.hosts or "*" in self.hosts

    @staticmethod
    def preflight(origin: str, headers: Headers) -> Response:
        """The answer to a CORS preflight from an allowed origin: any method the API has, the headers asked for."""
        return Response(status_code=204, headers={
            "access-control-allow-origin": origin, "vary": "Origin",
            "access-control-allow-methods": "GET, POST, OPTIONS",
            "access-control-allow-headers": headers.get("access-control-request-headers", "authorization, content-type"),
            "access-control-max-age": PREFLIGHT_MAX_AGE})
