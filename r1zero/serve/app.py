"""`r1zero serve`: an OpenAI-compatible HTTP API over the batched engine, and a chat page at `/`.

Routes: `POST /v1/chat/completions` and `POST /v1/completions` (both streaming over SSE or not),
`GET /v1/models`, `GET /health`, `GET /` (the chat page). Chat replies split the reasoning from the
answer as DeepSeek's API does (`reasoning.py`); `/v1/completions` returns the raw text. A chat request
may offer `tools`; the reply then returns the model's calls as OpenAI `tool_calls` (`tools.py`), and the
client sends the results back as `role: tool` messages.

Every refusal is JSON in OpenAI's error shape: 400 (bad JSON or field, n too large, context too
long, a non-loopback `Host` on a loopback server), 401 (wrong API key), 403 (a cross-origin page not
allowed), 404 (unknown model or route), 413 (body over `max_body_bytes`), 415 (a POST whose body is
not declared JSON), 429 (the engine's running + waiting sequences are at their bound); `guard.py`
holds the browser-facing checks. Departures from OpenAI's API: the API key, when set, is one shared
bearer token; `/health` and `/` need none. A streamed reply that fails half-way ends with an
`{"error": ...}` event, as OpenAI's streams do.

A request body over 16 KiB is parsed, rendered and tokenized on a worker thread, so that big prompts
(tokenizing 1 MB can take seconds) do not stall the event loop, and with it every other request.
"""

from __future__ import annotations

import asyncio
import copy
import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from r1zero.serve.guard import RequestGuard
from r1zero.serve.jobs import Generator, Job, Plan, collect, plan_request, reasoning_token_count, render_chat
from r1zero.serve.page import chat_page
from r1zero.serve.protocol import (
    APIError,
    ChatRequest,
    Choice,
    CompletionRequest,
    chat_chunk,
    chat_reply,
    completion_chunk,
    completion_reply,
    new_id,
    parse_request,
    usage,
)
from r1zero.serve.reasoning import ReasoningStream, split_reasoning
from r1zero.serve.tools import split_tool_calls, template_messages, tools_on, uses_tools


@dataclass
class ServerOptions:
    model_id: str  # the name clients pass as `model`
    template: str = "chat"  # prompt template for chat messages (r1zero.tasks.templates): chat | r1_zero | plain
    api_key: str | None = None  # when set, /v1 routes need `Authorization: Bearer <key>`
    max_body_bytes: int = 1 << 20  # larger request bodies get 413
    max_n: int = 8  # most choices per request
    default_max_tokens: int = 512  # when a request gives no max_tokens (capped by the context left)
    bind_host: str = "127.0.0.1"  # the address bound; on loopback, only loopback Host names are answered
    allowed_hosts: tuple[str, ...] = ()  # more Host names a loopback server answers ("*": any)
    allowed_origins: tuple[str, ...] = ()  # cross-origin pages allowed, with CORS ("http://localhost:3000")


INLINE_BODY_BYTES = 16 << 10  # smaller requests are prepared on the event loop: a thread hop costs more than they do


def parse_json(body: bytes):
    """The decoded body; 400 for what is not JSON, or is nested deeper than the decoder's recursion limit."""
    try:
        return json.loads(body)
    except RecursionError:
        raise APIError(400, "could not parse the JSON body: nested too deeply", code="invalid_json") from None
    except ValueError as e:
        raise APIError(400, f"could not parse the JSON body: {e}", code="invalid_json") from None


class Server:
    """The state behind the routes: tokenizer, generator (engine + budget forcing) and limits."""

    def __init__(self, tokenizer, generator: Generator, opts: ServerOptions):
        self.tokenizer, self.generator, self.opts = tokenizer, generator, opts
        ids = tokenizer("</think>", add_special_tokens=False)["input_ids"]
        self.think_close_id = ids[0] if len(ids) == 1 else None
        # Big requests are prepared on one thread with its own tokenizer (fast tokenizers are not thread-safe).
        self.preparer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="r1zero-prepare")
        self.preparer_tokenizer = copy.deepcopy(tokenizer)

    def check_key(self, request: Request) -> None:
        if self.opts.api_key is None:
            return
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), self.opts.api_key.encode()):
            raise APIError(401, "Incorrect API key provided.", code="invalid_api_key")

    async def read_body(self, request: Request) -> bytes:
        """The body; 413 past the size bound (the body is still drained, so the client hears why)."""
        limit, size, chunks = self.opts.max_body_bytes, 0, []
        async for chunk in request.stream():
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
            elif size > 64 * limit:
                break
        if size > limit:
            raise APIError(413, f"request body too large: over {limit:,} bytes ({size:,} read)",
                           code="request_too_large")
        return b"".join(chunks)

    async def prepare(self, make_plan, body: bytes) -> Plan:
        """`make_plan(body, tokenizer)`: on the event loop for a small body, on the preparing thread for a big one."""
        if len(body) <= INLINE_BODY_BYTES:
            return make_plan(body, self.tokenizer)
        return await asyncio.get_running_loop().run_in_executor(self.preparer, make_plan, body,
                                                                 self.preparer_tokenizer)

    def check_model(self, name: str) -> None:
        if name != self.opts.model_id:
            raise APIError(404, f"The model `{name}` does not exist; this server serves `{self.opts.model_id}`.",
                           "model", "model_not_found")

    def plan_chat(self, body: bytes, tokenizer) -> Plan:
        """A chat request from its body: validated, rendered, tokenized and checked against the context."""
        from r1zero.errors import UserError

        req = parse_request(ChatRequest, parse_json(body))
        self.check_model(req.model)
        try:
            prompt, opens = render_chat(tokenizer, self.opts.template, template_messages(req),
                                        [t.model_dump() for t in req.tools or []] if tools_on(req) else None,
                                        with_tools=uses_tools(req))
        except UserError as e:
            raise APIError(400, f"{'tools' if req.tools else 'messages'}: {e}", "messages") from None
        plan = self.plan(req, [prompt])
        plan.starts_in_think, plan.tools = opens, tools_on(req)
        return plan

    def plan_completion(self, body: bytes, tokenizer) -> Plan:
        """A completion request from its body: validated, tokenized and checked against the context."""
        req = parse_request(CompletionRequest, parse_json(body))
        self.check_model(req.model)
        return self.plan(req, [tokenizer(p, add_special_tokens=False)["input_ids"] or [tokenizer.eos_token_id]
                               for p in req.prompts()])

    def plan(self, req, prompts: list[list[int]]) -> Plan:
        return plan_request(req, prompts, self.generator.engine.context, self.opts.default_max_tokens, self.opts.max_n)

    def chat_choices(self, results, plan) -> tuple[list[dict], list[Choice]]:
        messages, choices = [], []
        for text, event in results:
            said, calls = split_tool_calls(text) if plan.tools else (text, [])
            reasoning, content = split_reasoning(said, plan.starts_in_think)
            messages.append({"content": content or (None if calls else content), "reasoning_content": reasoning,
                             **({"tool_calls": calls} if calls else {})})
            n_reason = reasoning_token_count(event.token_ids or [], self.think_close_id,
                                             bool(reasoning) or plan.starts_in_think or "<think>" in text)
            finish = "tool_calls" if calls and event.finish_reason == "stop" else event.finish_reason
            choices.append(Choice(text, finish, event.completion_tokens, n_reason))
        return messages, choices


def sse(obj) -> bytes:
    return f"data: {json.dumps(obj, separators=(',', ':'))}\n\n".encode()


def wants_usage(plan) -> bool:
    return bool(plan.request.stream_options and plan.request.stream_options.include_usage)


async def stream_chat(job: Job, plan, rid: str, model: str, prompt_tokens: int, server: Server):
    """SSE chunks: the role, then reasoning and content deltas per choice, each choice's finish, usage."""
    created = int(time.time())
    streams = [ReasoningStream(plan.starts_in_think) for _ in range(job.count)]
    texts, finals = [""] * job.count, [None] * job.count
    try:
        yield sse(chat_chunk(rid, model, created, [{"index": i, "delta": {"role": "assistant", "content": ""},
                                                    "finish_reason": None} for i in range(job.count)]))
        async for batch in job.events():
            merged: dict[int, str] = {}
            for i, event in batch:
                merged[i] = merged.get(i, "") + event.text
                texts[i] += event.text
                finals[i] = event if event.finish_reason else finals[i]
            for i, delta in merged.items():
                if finals[i] is not None and finals[i].finish_reason == "error":
                    yield sse(APIError(500, finals[i].error or "generation failed", kind="server_error").body())
                    return
                fields = zip(("reasoning_content", "content"), streams[i].feed(delta, final=finals[i] is not None))
                out = [{"index": i, "delta": {name: text}, "finish_reason": None} for name, text in fields if text]
                if finals[i] is not None:
                    out.append({"index": i, "delta": {}, "finish_reason": finals[i].finish_reason})
                if out:
                    yield sse(chat_chunk(rid, model, created, out))
        if wants_usage(plan):
            _, choices = server.chat_choices(list(zip(texts, finals)), plan)
            yield sse(chat_chunk(rid, model, created, [], usage(prompt_tokens, choices, reasoning=True)))
        yield b"data: [DONE]\n\n"
    finally:
        job.cancel()  # a client that went away frees its rows at the next step


async def stream_chat_with_tools(job: Job, plan, rid: str, model: str, prompt_tokens: int, server: Server):
    """A streamed reply that may call tools: the whole reply is collected first (a call is known only once
    it is complete), then sent as OpenAI streams it: role, reasoning and content, the calls, the finish."""
    created = int(time.time())
    try:
        try:
            results = await collect(job)
        except APIError as e:
            yield sse(e.body())
            return
        messages, choices = server.chat_choices(results, plan)
        for i, (m, c) in enumerate(zip(messages, choices)):
            deltas = [{"role": "assistant", "content": ""}]
            deltas += [{name: m[name]} for name in ("reasoning_content", "content") if m.get(name)]
            deltas += [{"tool_calls": [{"index": k, **call} for k, call in enumerate(m.get("tool_calls", []))]}]
            for delta in deltas:
                if delta.get("tool_calls") != []:
                    yield sse(chat_chunk(rid, model, created, [{"index": i, "delta": delta, "finish_reason": None}]))
            yield sse(chat_chunk(rid, model, created, [{"index": i, "delta": {}, "finish_reason": c.finish_reason}]))
        if wants_usage(plan):
            yield sse(chat_chunk(rid, model, created, [], usage(prompt_tokens, choices, reasoning=True)))
        yield b"data: [DONE]\n\n"
    finally:
        job.cancel()


async def stream_completion(job: Job, plan, rid: str, model: str, prompt_tokens: int):
    created = int(time.time())
    finals = [None] * job.count
    try:
        async for batch in job.events():
            merged: dict[int, dict] = {}  # one entry per choice, even when it has several new events
            for i, event in batch:
                if event.finish_reason == "error":
                    yield sse(APIError(500, event.error or "generation failed", kind="server_error").body())
                    return
                finals[i] = event if event.finish_reason else finals[i]
                entry = merged.setdefault(i, {"index": i, "text": "", "finish_reason": None})
                entry["text"] += event.text
                entry["finish_reason"] = event.finish_reason
            yield sse(completion_chunk(rid, model, created, list(merged.values())))
        if wants_usage(plan):
            choices = [Choice("", e.finish_reason, e.completion_tokens) for e in finals]
            yield sse(completion_chunk(rid, model, created, [], usage(prompt_tokens, choices, reasoning=False)))
        yield b"data: [DONE]\n\n"
    finally:
        job.cancel()


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def add_routes(app: FastAPI, server: Server) -> None:
    opts = server.opts

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return chat_page(opts.model_id, needs_key=opts.api_key is not None)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model": opts.model_id, **server.generator.engine.stats()}

    card = {"id": opts.model_id, "object": "model", "created": 0, "owned_by": "r1zero"}

    @app.get("/v1/models")
    async def models(request: Request) -> dict:
        server.check_key(request)
        return {"object": "list", "data": [card]}

    @app.get("/v1/models/{name:path}")
    async def model(name: str, request: Request) -> dict:
        server.check_key(request)
        server.check_model(name)
        return card

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        server.check_key(request)
        plan = await server.prepare(server.plan_chat, await server.read_body(request))
        req, prompt_tokens = plan.request, len(plan.prompts[0])
        job, rid = server.generator.start(plan), new_id("chatcmpl")
        if req.stream:
            stream = stream_chat_with_tools if plan.tools else stream_chat
            return StreamingResponse(stream(job, plan, rid, req.model, prompt_tokens, server),
                                     media_type="text/event-stream", headers=SSE_HEADERS)
        messages, choices = server.chat_choices(await collect(job), plan)
        return chat_reply(rid, req.model, messages, choices, prompt_tokens)

    @app.post("/v1/completions")
    async def completions(request: Request):
        server.check_key(request)
        plan = await server.prepare(server.plan_completion, await server.read_body(request))
        req = plan.request
        job, rid, prompt_tokens = server.generator.start(plan), new_id("cmpl"), sum(map(len, plan.prompts))
        if req.stream:
            return StreamingResponse(stream_completion(job, plan, rid, req.model, prompt_tokens),
                                     media_type="text/event-stream", headers=SSE_HEADERS)
        choices = [Choice(text, e.finish_reason, e.completion_tokens) for text, e in await collect(job)]
        return completion_reply(rid, req.model, choices, prompt_tokens)


def create_app(tokenizer, generator: Generator, opts: ServerOptions) -> FastAPI:
    app = FastAPI(title="r1zero", docs_url=None, redoc_url=None, openapi_url=None)
    server = Server(tokenizer, generator, opts)
    app.state.server = server

    @app.exception_handler(APIError)
    async def api_error(request: Request, e: APIError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code)
        return JSONResponse(APIError(e.status_code, f"{request.method} {request.url.path}: {e.detail}",
                                     code=code).body(), status_code=e.status_code)

    app.add_middleware(RequestGuard, bind_host=opts.bind_host, allowed_hosts=opts.allowed_hosts,
                       allowed_origins=opts.allowed_origins)  # also answers what no handler above caught: 500
    add_routes(app, server)
    return app
