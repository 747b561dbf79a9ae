"""Tools a model calls during a rollout or a served chat: the call format, the tools, and the toolbox.

`format` writes and parses calls (`<tool_call>{json}</tool_call>`), `base` turns functions into
OpenAI-style tools and runs calls safely, `builtin` registers `calculator` and `python`, and
`template` is the tool-aware chat template.
"""

from r1zero.tools import builtin  # noqa: F401 - registers the built-in tools
from r1zero.tools.base import (
           ERROR_KINDS,
           TOOLS,
           Tool,
           ToolBox,
           ToolLimitExceeded,
           ToolResult,
           load_tool,
           tool_from_function,
)
from r1zero.tools.format import parse_tool_calls, render_tool_call, render_tool_response

__all__ = ["ERROR_KINDS", "TOOLS", "Tool", "ToolBox", "ToolLimitExceeded", "ToolResult", "load_tool",
           "parse_tool_calls", "render_tool_call", "render_tool_response", "tool_from_function"]
