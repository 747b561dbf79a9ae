"""Tools as plain Python functions, described to the model in OpenAI's function-tool format.

`tool_from_function(fn)` takes the JSON schema of a tool's arguments from its signature (annotations
-> JSON types, parameters without a default are required) and its description from the docstring
(the first paragraph; an `Args:` section gives each parameter's description). `load_tool(spec)` takes
a registered name (`calculator`, `python`) or `module:function`, as rewards do.

`ToolBox.run(call)` never raises: a malformed call (bad JSON, unknown tool, wrong arguments) or a tool
that raises or exceeds its limits gives a one-line `error: ...` result, and the kind is counted
(`ERROR_KINDS`), so a rollout goes on and the step's metrics say what went wrong.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from r1zero.errors import UserError
from r1zero.registry import Registry
from r1zero.tools.format import ParsedCall

ERROR_KINDS = ("bad_json", "unknown_tool", "bad_arguments", "tool_error", "limit")
JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean", list: "array", dict: "object"}


class ToolLimitExceeded(Exception):
    """Raised by a tool that ran past its time, memory or output limits."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict  # JSON schema of the arguments object
    fn: Callable[..., Any]

    def schema(self) -> dict:
        """The OpenAI function-tool description (what `tools=[...]` holds in a chat request)."""
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


@dataclass
class ToolResult:
    text: str  # what the model reads as the tool's reply
    error: str | None = None  # one of ERROR_KINDS, or None


TOOLS: Registry[Callable[..., Any]] = Registry("tool")


def json_type(annotation) -> dict:
    """A JSON schema for a parameter annotation; {} (anything) when it has no JSON counterpart."""
    origin = typing.get_origin(annotation) or annotation
    if origin in (typing.Union, types.UnionType):
        options = [json_type(a) for a in typing.get_args(annotation) if a is not type(None)]
        return options[0] if len(options) == 1 else {"anyOf": options}
    return {"type": JSON_TYPES[origin]} if origin in JSON_TYPES else {}


def docstring_parts(fn) -> tuple[str, dict[str, str]]:
    """(description, {parameter: description}) from a Google-style docstring."""
    doc = inspect.getdoc(fn) or ""
    head, _, rest = doc.partition("\nArgs:\n")
    params = {}
    for line in rest.splitlines():
        m = re.match(r"\s+(\w+)(?:\s*\([^)]*\))?:\s*(.*)", line)
        if m:
            params[m.group(1)] = m.group(2).strip()
        elif params and line.strip() and not line.startswith(" "):
            break  # the next section
    return " ".join(head.split("\n\n")[0].split()), params


def tool_from_function(fn: Callable[..., Any], name: str | None = None) -> Tool:
    """A Tool whose schema comes from `fn`'s signature and docstring.

    >>> def add(a: int, b: int = 0) -> int:
    ...     '''Add two integers.'''
    ...     return a + b
    >>> tool_from_function(add).parameters
    {'type': 'object', 'properties': {'a': {'type': 'integer'}, 'b': {'type': 'integer'}}, 'required': ['a']}
    """
    description, param_docs = docstring_parts(fn)
    properties, required = {}, []
    try:
        hints = typing.get_type_hints(fn)  # resolves string annotations (`from __future__ import annotations`)
    except Exception:  # noqa: BLE001 - an annotation that does not resolve describes nothing
        hints = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        properties[p.name] = {**json_type(hints.get(p.name)),
                              **({"description": param_docs[p.name]} if p.name in param_docs else {})}
        if p.default is p.empty:
            required.append(p.name)
    return Tool(name or fn.__name__, description, {"type": "object", "properties": properties, "required": required}, fn)


def load_tool(spec: str) -> Tool:
    """A registered tool name, or `module:function` for a user's own."""
    if ":" not in spec:
        return tool_from_function(TOOLS.get(spec), spec)
    module, attr = spec.split(":", 1)
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise UserError(f"cannot import tool {spec!r} ({e}); expected module:function") from None
    if not callable(fn):
        raise UserError(f"tool {spec!r} is not a function")
    return tool_from_function(fn, attr)


def one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def type_matches(value, schema: dict) -> bool:
    if "anyOf" in schema:
        return any(type_matches(value, s) for s in schema["anyOf"])
    kind = schema.get("type")
    if kind is None:
        return True
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, {"string": str, "boolean": bool, "array": list, "object": dict}[kind])


class ToolBox:
    """Named tools, and the one place a call is checked, run and turned into text for the model."""

    def __init__(self, tools: list[Tool], max_output_chars: int = 400):
        self.tools = {t.name: t for t in tools}
        self.max_output_chars = max_output_chars

    @classmethod
    def from_specs(cls, specs: list[str]) -> ToolBox:
        return cls([load_tool(s) for s in specs])

    def schemas(self) -> list[dict]:
        return [t.schema() for t in self.tools.values()]

    def run(self, call: ParsedCall) -> ToolResult:
        if call.error:
            return ToolResult('error: a tool call is a JSON object {"name": ..., "arguments": {...}}', call.error)
        tool = self.tools.get(call.name)
        if tool is None:
            return ToolResult(f"error: unknown tool {call.name!r}; tools: {', '.join(self.tools)}", "unknown_tool")
        problem = self.argument_problem(tool, call.arguments)
        if problem:
            return ToolResult(f"error: {tool.name}: {problem}", "bad_arguments")
        try:
            out = tool.fn(**call.arguments)
        except ToolLimitExceeded as e:
            return ToolResult(f"error: {tool.name}: {one_line(e)}", "limit")
        except Exception as e:  # noqa: BLE001 - any failure of the tool is the model's error message
            return ToolResult(f"error: {tool.name}: {type(e).__name__}: {one_line(e)}", "tool_error")
        text = out if isinstance(out, str) else json.dumps(out, default=str)
        if len(text) > self.max_output_chars:
            text = text[: self.max_output_chars] + "...[truncated]"
        return ToolResult(text)

    @staticmethod
    def argument_problem(tool: Tool, arguments: dict) -> str | None:
        """Why `arguments` do not fit the tool (missing, unexpected or mistyped), or None."""
        props, required = tool.parameters["properties"], tool.parameters["required"]
        if missing := [k for k in required if k not in arguments]:
            return f"missing argument {missing[0]!r}"
        accepts_any = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(tool.fn).parameters.values())
        if (extra := [k for k in arguments if k not in props]) and not accepts_any:
            return f"unexpected argument {extra[0]!r}; arguments: {', '.join(props)}"
        for k, v in arguments.items():
            if k in props and not type_matches(v, props[k]):
                return f"argument {k!r} must be of type {props[k].get('type', props[k])}"
        return None
