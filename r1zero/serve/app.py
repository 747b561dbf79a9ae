"""`r1zero serve`: an OpenAI-compatible HTTP API over the batched engine, and a chat page at `/`.

Routes: `POST /v1/chat/completions` and `POST /v1/completions` (both streaming over SSE or not),
`GET /v1/models`, `GET /health`, `GET /` (the chat page). Chat replies split the reasoning from the
answer as DeepSeek's API does (`reasoning.py`); `/v1/completions` returns the raw text.

Every refusal is JSON in OpenAI's error shape: 400 (bad JSON or field, n too large, context too
long), 401 (wrong API key), 404 (unknown model or route), 413 (body over `max_body_bytes`), 429
(the engine's running + waiting sequences are at their bound). Departures from OpenAI's API: the
API key, when set, is one shared bearer token; `/health` and `/` need none. A streamed reply that
fails half-way ends with an `{"error": ...}` event, as OpenAI's streams do.
"""

from __future__ import annotations

import hmac
import json
import time
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from r1zero.serve.jobs import Generator, Job, collect, plan_request, reasoning_token_count, render_chat
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


@dataclass
class ServerOptions:
    model_id: str  # the name clients pass as `model`
    template: str = "chat"  # prompt template for chat messages (r1zero.tasks.templates): chat | r1_zero | plain
    api_key: str | None = None  # when set, /v1 routes need `Authorization: Bearer <key>`
    max_body_bytes: int = 1 << 20  # larger request bodies get 413
    max_n: int = 8  # most choices per request
    default_max_tokens: int = 512  # when a request gives no max_tokens (capped by the context left)


class Server:
    """The state behind the routes: tokenizer, generator (engine + budget forcing) and limits."""

    def __init__(self, tokenizer, generator: Generator, opts: ServerOptions):
        self.tokenizer, self.generator, self.opts = tokenizer, generator, opts
        ids = tokenizer("</think>", add_special_tokens=False)["input_ids"]
        self.think_close_id = ids[0] if len(ids) == 1 else None

    def check_key(self, request: Request) -> None:
        if self.opts.api_key is None:
            return
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), self.opts.api_key.encode()):
            raise APIError(401, "Incorrect API key provided.", code="invalid_api_key")

    async def read_json(self, request: Request):
        """The JSON body; 413 past the size bound (the body is still drained, so the client hears why)."""
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
        try:
            return json.loads(b"".join(chunks))
        except ValueError as e:
            raise APIError(400, f"could not parse the JSON body: {e}", code="invalid_json") from None

    def check_model(self, name: str) -> None:
        if name != self.opts.model_id:
            raise APIError(404, f"The model `{name}` does not exist; this server serves `{self.opts.model_id}`.",
                           "model", "model_not_found")

    def chat_prompt(self, req: ChatRequest) -> tuple[list[int], bool]:
        """Token ids of the rendered conversation, and whether the rendering opened `<think>`."""
        from r1zero.errors import UserError

        try:
            return render_chat(self.tokenizer, self.opts.template,
                               [{"role": m.role, "content": m.text()} for m in req.messages])
        except UserError as e:
            raise APIError(400, f"messages: {e}", "messages") from None

    def chat_choices(self, results, plan) -> tuple[list[dict], list[Choice]]:
        messages, choices = [], []
        for text, event in results:
            reasoning, content = split_reasoning(text, plan.starts_in_think)
            messages.append({"content": content, "reasoning_content": reasoning})
            n_reason = reasoning_token_count(event.token_ids or [], self.think_close_id,
                                             bool(reasoning) or plan.starts_in_think or "<think>" in text)
            choices.append(Choice(text, event.finish_reason, event.completion_tokens, n_reason))
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
        req = parse_request(ChatRequest, await server.read_json(request))
        server.check_model(req.model)
        prompt, opens = server.chat_prompt(req)
        plan = plan_request(req, [prompt], server.generator.engine.context, opts.default_max_tokens, opts.max_n)
        plan.starts_in_think = opens
        job, rid = server.generator.start(plan), new_id("chatcmpl")
        if req.stream:
            return StreamingResponse(stream_chat(job, plan, rid, req.model, len(prompt), server),
                                     media_type="text/event-stream", headers=SSE_HEADERS)
        messages, choices = server.chat_choices(await collect(job), plan)
        return chat_reply(rid, req.model, messages, choices, len(prompt))

    @app.post("/v1/completions")
    async def completions(request: Request):
        server.check_key(request)
        req = parse_request(CompletionRequest, await server.read_json(request))
        server.check_model(req.model)
        prompts = [server.tokenizer(p, add_special_tokens=False)["input_ids"] or [server.tokenizer.eos_token_id]
                   for p in req.prompts()]
        plan = plan_request(req, prompts, server.generator.engine.context, opts.default_max_tokens, opts.max_n)
        job, rid, prompt_tokens = server.generator.start(plan), new_id("cmpl"), sum(map(len, prompts))
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

    @app.exception_handler(Exception)
    async def server_error(request: Request, e: Exception) -> JSONResponse:
        return JSONResponse(APIError(500, f"internal error: {type(e).__name__}: {e}", kind="server_error").body(),
                            status_code=500)

    add_routes(app, server)
    return app
