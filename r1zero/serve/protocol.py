"""The wire format: OpenAI-shaped requests, replies, stream chunks and errors.

Requests are validated here into plain typed objects; every mistake becomes an `APIError` with an
HTTP status and OpenAI's error body `{"error": {"message", "type", "param", "code"}}`.

Tools: a chat request may carry `tools` (function tools) and `tool_choice` ("none" switches them
off; any other choice is taken as "auto": the model decides); a reply whose text holds tool calls returns
them as `tool_calls` with finish reason "tool_calls"; the client runs them and sends `role: tool`
messages back. Departures from OpenAI's API: `logprobs`, `response_format`, `echo` and `suffix` are refused
with a 400 rather than ignored; unknown fields are ignored; a completion prompt is a string or a
list of strings (token-id prompts are refused). Extensions (pass them with the openai
client's `extra_body`): `top_k` (as vLLM), and the thinking budget `thinking_budget` (most tokens
of reasoning before `</think>` is forced) with `min_thinking_tokens` (fewer, and "Wait" replaces an
early `</think>`): budget forcing (s1). Chat replies carry `reasoning_content` as DeepSeek's do,
and `usage.completion_tokens_details.reasoning_tokens`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class APIError(Exception):
    """A request the server refuses, with its HTTP status and OpenAI error fields."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class FunctionCall(BaseModel):
    name: str
    arguments: str | dict = "{}"  # OpenAI sends a JSON string; an object is taken too


class ToolCall(BaseModel):
    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall


class FunctionSpec(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    description: str = ""
    parameters: dict = Field(default_factory=dict)


class ToolSpec(BaseModel):
    type: Literal["function"]
    function: FunctionSpec


class Message(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    tool_calls: list[ToolCall] | None = None  # assistant messages
    tool_call_id: str | None = None  # tool messages
    reasoning_content: str | None = None  # an assistant's reasoning, rendered back only before its tool calls

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    include_usage: bool = False


class CommonRequest(BaseModel):
    """Fields both endpoints share."""

    model_config = ConfigDict(extra="ignore")

    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0)
    n: int = Field(1, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**62), lt=2**62)  # what torch generators take, with room for + k
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: Any = None
    thinking_budget: int | None = Field(None, ge=0)
    min_thinking_tokens: int = Field(0, ge=0)

    def stop_list(self) -> list[str]:
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stop) > 4:
            raise APIError(400, "stop: at most 4 stop sequences", "stop")
        return stop


class ChatRequest(CommonRequest):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)  # OpenAI's newer name for max_tokens
    tools: list[ToolSpec] | None = None
    tool_choice: Any = None
    response_format: Any = None


class CompletionRequest(CommonRequest):
    prompt: str | list[str]
    echo: bool = False
    suffix: str | None = None

    def prompts(self) -> list[str]:
        prompts = [self.prompt] if isinstance(self.prompt, str) else self.prompt
        if not prompts:
            raise APIError(400, "prompt: must not be empty", "prompt")
        return prompts


UNSUPPORTED = ("logprobs", "response_format", "echo", "suffix")


def parse_request(kind: type[CommonRequest], body: Any) -> CommonRequest:
    """Validate a decoded JSON body; the first problem becomes a 400 naming the field."""
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object")
    try:
        req = kind.model_validate({k: v for k, v in body.items() if v is not None})  # null = the default
    except ValidationError as e:
        err = e.errors()[0]
        param = ".".join(str(p) for p in err["loc"]) or None
        raise APIError(400, f"{param}: {err['msg']}" if param else err["msg"], param) from None
    for name in UNSUPPORTED:
        if getattr(req, name, None):
            raise APIError(400, f"{name}: not supported by this server", name)
    return req


@dataclass
class Choice:
    """One finished choice, as the server collected it from the engine."""

    text: str
    finish_reason: str
    completion_tokens: int
    reasoning_tokens: int = 0


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, choices: list[Choice], reasoning: bool) -> dict:
    completion = sum(c.completion_tokens for c in choices)
    out = {"prompt_tokens": prompt_tokens, "completion_tokens": completion, "total_tokens": prompt_tokens + completion}
    if reasoning:
        out["completion_tokens_details"] = {"reasoning_tokens": sum(c.reasoning_tokens for c in choices)}
    return out


def chat_reply(rid: str, model: str, messages: list[dict], choices: list[Choice], prompt_tokens: int) -> dict:
    """`messages[i]` holds choice i's `content` and `reasoning_content`."""
    return {"id": rid, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": i, "message": {"role": "assistant", **m}, "logprobs": None,
                         "finish_reason": c.finish_reason} for i, (m, c) in enumerate(zip(messages, choices))],
            "usage": usage(prompt_tokens, choices, reasoning=True)}


def completion_reply(rid: str, model: str, choices: list[Choice], prompt_tokens: int) -> dict:
    return {"id": rid, "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": [{"index": i, "text": c.text, "logprobs": None, "finish_reason": c.finish_reason}
                        for i, c in enumerate(choices)],
            "usage": usage(prompt_tokens, choices, reasoning=False)}


def chat_chunk(rid: str, model: str, created: int, choices: list[dict], usage_: dict | None = None) -> dict:
    """`choices`: [{"index", "delta", "finish_reason"}]; a usage chunk has no choices."""
    out = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
           "choices": [{"logprobs": None, **c} for c in choices]}
    if usage_ is not None:
        out["usage"] = usage_
    return out


def completion_chunk(rid: str, model: str, created: int, choices: list[dict], usage_: dict | None = None) -> dict:
    """`choices`: [{"index", "text", "finish_reason"}]."""
    out = {"id": rid, "object": "text_completion", "created": created, "model": model,
           "choices": [{"logprobs": None, **c} for c in choices]}
    if usage_ is not None:
        out["usage"] = usage_
    return out
