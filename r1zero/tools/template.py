"""The tool-aware chat template of r1zero's model folders (OpenAI-style tool calls, Hermes-style text).

Without tools it renders exactly as the plain template did ("User: ..." / "Assistant: ..." lines, EOS
after each reply). With them:
- `tools` (OpenAI function-tool descriptions) are listed in a first line, as JSON;
- an assistant message's `tool_calls` (`{"function": {"name", "arguments"}}`, arguments as an object)
  are written after its content as `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, and the
  turn stays open (no EOS);
- a `tool` message is `<tool_response>...</tool_response>`, and what follows it (the next assistant
  message, or the generation prompt) continues the same assistant turn with no new header.
So a served conversation reads as the one completion an RL rollout wrote (r1zero.rollout.multiturn).
"""

from __future__ import annotations

from r1zero.tools.format import TOOL_CALL_CLOSE, TOOL_CALL_OPEN, TOOL_RESPONSE_CLOSE, TOOL_RESPONSE_OPEN

TOOLS_PREAMBLE = ("Tools (call one as " + TOOL_CALL_OPEN + '{"name": ..., "arguments": {...}}'
                  + TOOL_CALL_CLOSE + "): ")

TOOL_CHAT_TEMPLATE = (
    "{% if tools %}" + TOOLS_PREAMBLE + "{{ tools | tojson }}\n{% endif %}"
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] }}\n"
    "{% elif m['role'] == 'user' %}User: {{ m['content'] }}\n"
    "{% elif m['role'] == 'tool' %}" + TOOL_RESPONSE_OPEN + "{{ m['content'] }}" + TOOL_RESPONSE_CLOSE +
    "{% else %}"
    "{% if loop.first or messages[loop.index0 - 1]['role'] != 'tool' %}Assistant: {% endif %}"
    "{{ m['content'] or '' }}"
    "{% if m.get('tool_calls') %}{% for c in m['tool_calls'] %}{% set f = c['function'] if c.get('function') else c %}"
    + TOOL_CALL_OPEN + '{"name": {{ f[\'name\'] | tojson }}, "arguments": {{ f[\'arguments\'] | tojson }}}'
    + TOOL_CALL_CLOSE + "{% endfor %}"
    "{% else %}{{ eos_token }}\n{% endif %}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt and not (messages and messages[-1]['role'] == 'tool') %}Assistant: {% endif %}"
)


def supports_tools(tokenizer) -> bool:
    """Whether the tokenizer's chat template renders tool calls and tool messages."""
    template = getattr(tokenizer, "chat_template", None) or ""
    return isinstance(template, str) and "tool_calls" in template and "tool" in template
