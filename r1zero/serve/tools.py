"""Tool calls over the API: OpenAI messages in, `tool_calls` out.

A request's messages become the dicts the tool-aware chat template renders (r1zero.tools.template),
with each call's JSON `arguments` parsed into an object so that it renders exactly as the model wrote
it in training. An assistant message with tool calls keeps its `reasoning_content` (sent back as the
server returned it) in front of them: the calls are part of one line of thought, which the tool results
interrupt, as in an RL rollout (departing from DeepSeek-R1's API, which drops reasoning from the history). A reply's text is split into what the model said and its `<tool_call>`s, each returned
in OpenAI's shape (`{"id", "type": "function", "function": {"name", "arguments": "<json>"}}`).
Generation stops at `</tool_call>` (the client has to run the tool before the model can go on); a call
that does not parse stays in `content` as text.
"""

from __future__ import annotations

import json
import uuid

from r1zero.serve.protocol import APIError, ChatRequest
from r1zero.tools.format import TOOL_CALL_CLOSE, TOOL_CALL_OPEN, parse_call_body

STOP = TOOL_CALL_CLOSE


def tools_on(req: ChatRequest) -> bool:
    return bool(req.tools) and req.tool_choice != "none"


def template_messages(req: ChatRequest) -> list[dict]:
    """The request's messages as chat-template dicts; a call whose arguments are not a JSON object is a 400."""
    out = []
    for i, m in enumerate(req.messages):
        msg = {"role": m.role, "content": m.text()}
        if m.tool_calls:
            if m.reasoning_content:  # the thinking that led to the calls goes on after their results
                msg["content"] = f"<think>{m.reasoning_content}</think>{msg['content']}"
            calls = []
            for j, c in enumerate(m.tool_calls):
                args = c.function.arguments
                try:
                    args = json.loads(args) if isinstance(args, str) else args
                except ValueError:
                    args = None
                if not isinstance(args, dict):
                    raise APIError(400, f"messages.{i}.tool_calls.{j}.function.arguments: expected a JSON object",
                                   f"messages.{i}.tool_calls")
                calls.append({"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": args}})
            msg["tool_calls"] = calls
        if m.tool_call_id is not None:
            msg["tool_call_id"] = m.tool_call_id
        out.append(msg)
    return out


def uses_tools(req: ChatRequest) -> bool:
    """Whether rendering needs the tool-aware template: tools offered, or calls and results in the history."""
    return tools_on(req) or any(m.role == "tool" or m.tool_calls for m in req.messages)


def split_tool_calls(text: str) -> tuple[str, list[dict]]:
    """(text without its well-formed calls, those calls in OpenAI's shape). A call cut by the `</tool_call>`
    stop (the stop is not part of the text) counts as closed."""
    added = text.count(TOOL_CALL_OPEN) > text.count(TOOL_CALL_CLOSE)
    if added:
        text += TOOL_CALL_CLOSE
    rest, calls, pos = "", [], 0
    while (start := text.find(TOOL_CALL_OPEN, pos)) >= 0:
        end = text.find(TOOL_CALL_CLOSE, start)
        if end < 0:
            break
        call = parse_call_body(text[start + len(TOOL_CALL_OPEN) : end])
        if call.error:
            rest += text[pos : end + len(TOOL_CALL_CLOSE)]
        else:
            rest += text[pos:start]
            calls.append({"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                          "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)}})
        pos = end + len(TOOL_CALL_CLOSE)
    rest += text[pos:]
    if added and rest.endswith(TOOL_CALL_CLOSE):
        rest = rest[: -len(TOOL_CALL_CLOSE)]  # the close added above, after a call that did not parse
    return rest, calls
