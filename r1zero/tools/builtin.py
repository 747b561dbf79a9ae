"""The built-in tools: `calculator` (exact arithmetic, evaluated without `eval`) and `python` (a
program run in the reward sandbox, `r1zero.rewards.sandbox`, with its limits)."""

from __future__ import annotations

import ast
import operator

from r1zero.tools.base import TOOLS, ToolLimitExceeded

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
MAX_DIGITS = 1000  # larger intermediate results count as exceeding the calculator's limits


def _value(node):
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) * max(len(str(abs(int(left)))), 1) > MAX_DIGITS:
            raise ToolLimitExceeded(f"result over {MAX_DIGITS} digits")
        out = _BINARY[type(node.op)](left, right)
        if isinstance(out, int) and out.bit_length() > MAX_DIGITS * 3.33:
            raise ToolLimitExceeded(f"result over {MAX_DIGITS} digits")
        return out
    raise ValueError(f"not arithmetic: {ast.unparse(node)[:40]!r}")


@TOOLS.register("calculator")
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression exactly: + - * / // % ** and parentheses.

    Args:
        expression: the expression, e.g. "123*456"
    """
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise ValueError(f"cannot parse {expression[:40]!r}") from None
    out = _value(tree.body)
    return str(int(out)) if isinstance(out, float) and out.is_integer() and abs(out) < 2**53 else str(out)


@TOOLS.register("python")
def python(code: str) -> str:
    """Run a Python program (standard library only) and return what it prints.

    Args:
        code: the program; print what you want to see
    """
    from r1zero.rewards.sandbox import Limits, run_python

    result = run_python(code, limits=Limits(wall_s=5.0, memory_mb=512))
    if result.timed_out or result.cpu_exceeded or result.memory_exceeded:
        what = "time" if result.timed_out or result.cpu_exceeded else "memory"
        raise ToolLimitExceeded(f"the program exceeded its {what} limit")
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or [f"exit status {result.returncode}"]
        raise RuntimeError(lines[-1])
    return result.stdout.rstrip("\n")
