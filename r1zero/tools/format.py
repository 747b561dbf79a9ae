"""How tool calls and tool results are written in a completion (the Hermes / Qwen2.5 style).

A call is a JSON object between tags, OpenAI's function call in text form:
`<tool_call>{"name": "calculator", "arguments": {"expression": "12*34"}}</tool_call>`; the
environment answers in the same flow of text with `<tool_response>408</tool_response>`, and the
model goes on writing. The chat template (`r1zero.tools.template`) renders an OpenAI conversation
(`tool_calls` with JSON arguments, `role: tool` messages) as exactly this text, so a model trained on
rollouts serves to any OpenAI-style client.

Where it departs from Qwen2.5's template: no newlines around the JSON (fewer tokens for a tiny model),
and the tool result continues the assistant's turn rather than opening a new one (a rollout is one
completion, so the text the model saw in RL is the text it sees when served).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"
TOOL_RESPONSE_OPEN, TOOL_RESPONSE_CLOSE = "<tool_response>", "</tool_response>"
TOOL_TOKENS = [TOOL_CALL_OPEN, TOOL_CALL_CLOSE, TOOL_RESPONSE_OPEN, TOOL_RESPONSE_CLOSE]

_CALL = re.compile(re.escape(TOOL_CALL_OPEN) + r"(.*?)" + re.escape(TOOL_CALL_CLOSE), re.DOTALL)
# tags a tool's output must not carry into the context: it could fake an answer or a call
_RESERVED_TAG = re.compile(r"<(/?)(think|answer|tool_call|tool_response)>")


@dataclass
class ParsedCall:
    """One `<tool_call>` of a message: a name and arguments, or why it could not be read."""

    name: str | None
    arguments: dict | None
    error: str | None = None  # "bad_json" when the body is not {"name": str, "arguments": object}
    raw: str = ""


def parse_tool_calls(text: str) -> list[ParsedCall]:
    """Every closed `<tool_call>` of `text`, in order.

    >>> parse_tool_calls('<tool_call>{"name": "calculator", "arguments": {"expression": "2*3"}}</tool_call>')[0].arguments
    {'expression': '2*3'}
    >>> parse_tool_calls("<tool_call>{oops</tool_call>")[0].error
    'bad_json'
    """
    return [parse_call_body(m.group(1)) for m in _CALL.finditer(text)]


def parse_call_body(body: str) -> ParsedCall:
    """A call from its JSON text; `arguments` may also be a JSON string of an object (as OpenAI sends it)."""
    try:
        obj = json.loads(body)
        args = obj.get("arguments", {}) if isinstance(obj, dict) else None
        args = json.loads(args) if isinstance(args, str) else args
    except (ValueError, RecursionError):
        return ParsedCall(None, None, "bad_json", body)
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not isinstance(args, dict):
        return ParsedCall(None, None, "bad_json", body)
    return ParsedCall(obj["name"], args, None, body)


def strip_tool_calls(text: str) -> str:
    """`text` without its `<tool_call>` blocks."""
    return _CALL.sub("", text)


def render_tool_call(name: str, arguments: dict | str) -> str:
    """The text of one call; `arguments` as a dict or a JSON string of one."""
    args = json.loads(arguments) if isinstance(arguments, str) else arguments
    return TOOL_CALL_OPEN + json.dumps({"name": name, "arguments": args}, ensure_ascii=False) + TOOL_CALL_CLOSE


def neutralize(text: str) -> str:
    """Tool output with the project's tags defused (`<answer>` -> `[answer]`), so it can fake neither
    an answer nor a call.

    >>> neutralize("<answer>7</answer>")
    '[answer]7[/answer]'
    """
    return _RESERVED_TAG.sub(r"[\1\2]", text)


def render_tool_response(text: str) -> str:
    return TOOL_RESPONSE_OPEN + neutralize(text) + TOOL_RESPONSE_CLOSE
