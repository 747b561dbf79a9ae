"""Split assertion-style tests into calls for the sandbox and comparisons for the trusted side.

`split_tests(tests, callables)` parses each test (HumanEval's `def check(candidate): assert ...`,
MBPP's `assert f(x) == y`) with `ast`. Every call of a solution function whose arguments are
constants (literals, or trusted expressions of literals such as `float('inf')`) becomes a `Call`
that goes into the sandbox as plain data; what is left of each assert (`== [1, 2]`,
`abs(_ - 0.5) < 1e-6`, `math.isclose(_, y, rel_tol=...)`, `set(_) == {...}`, `not _`) stays here
and is evaluated by `evaluate` on the decoded results, with a small interpreter that knows only
constants, displays, arithmetic on numbers, comparisons, boolean logic, subscripts and a few pure
builtins. A test with anything else (loops, helpers, assignments from calls, `candidate` passed
to another function, nested solution calls) is not split: `split_tests` returns None for it and
the caller runs it in a sandbox of its own (see `harness.test_runner`).

Departure from running the test as written: builtins in a test (`sorted`, `set`, `abs`) are
Python's own, never the solution's redefinitions, and a result must be a plain value, so a
function returning a custom object fails where HumanEval's evaluator might compare it.
"""

from __future__ import annotations

import ast
import math
import operator
from dataclasses import dataclass, field
from typing import Any

from r1zero.rewards.plain import TYPES, encode

PURE_BUILTINS = {f.__name__: f for f in (abs, round, len, set, frozenset, sorted, list, tuple, min, max, sum, int,
                                          float, str, bool, all, any, dict)}
PURE_MATH = {"isclose": math.isclose, "fabs": math.fabs, "sqrt": math.sqrt, "floor": math.floor, "ceil": math.ceil}
MATH_CONSTANTS = {"inf": math.inf, "pi": math.pi, "e": math.e, "nan": math.nan}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
            ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}
_UNARY = {ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos}
MAX_NUMBER = 2**512  # arithmetic on larger ints (a result the solution chose) is refused, not computed
MAX_REPEAT = 10**5


class NotSplittable(Exception):
    """The test has a form that cannot be decided from call results alone."""


@dataclass(frozen=True)
class Call:
    """One call of a solution function, as plain data: args and kwargs already `plain.encode`d."""

    name: str
    args: list
    kwargs: dict

    def request(self, request_id: int) -> dict:
        return {"id": request_id, "name": self.name, "args": self.args,
                "kwargs": {"dict": [[k, v] for k, v in self.kwargs.items()]}}


@dataclass
class SplitTest:
    """A test as assert expressions over call results (`Name("_call_<k>")` stands for call k)."""

    asserts: list[ast.expr] = field(default_factory=list)


def _number(value: Any) -> Any:
    if type(value) is int and abs(value) > MAX_NUMBER:
        raise ValueError("number too large for the checker")
    return value


def _binary(op: type, left: Any, right: Any) -> Any:
    if op is ast.Mult and (isinstance(left, (str, list, tuple)) or isinstance(right, (str, list, tuple))):
        if max(abs(x) for x in (left, right) if type(x) is int) > MAX_REPEAT:
            raise ValueError("repetition too long for the checker")
    elif not all(type(x) in (int, float, complex, bool) for x in (left, right)) and op is not ast.Add:
        raise TypeError("arithmetic on numbers only")
    return _number(_BINARY[op](_number(left), _number(right)))


def evaluate(node: ast.AST, env: dict[str, Any]) -> Any:
    """The value of a checked expression over plain values (`env`: call results, constants)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [evaluate(item, env) for item in node.elts]
        return {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)](items)
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {evaluate(k, env): evaluate(v, env) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_number(evaluate(node.operand, env)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _binary(type(node.op), evaluate(node.left, env), evaluate(node.right, env))
    if isinstance(node, ast.BoolOp):
        value = None
        for operand in node.values:
            value = evaluate(operand, env)
            if bool(value) != isinstance(node.op, ast.And):
                return value
        return value
    if isinstance(node, ast.Compare):
        left = evaluate(node.left, env)
        for op, comparator in zip(node.ops, node.comparators):
            right = evaluate(comparator, env)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Subscript):
        index = node.slice
        key = (slice(*(evaluate(p, env) if p is not None else None for p in (index.lower, index.upper, index.step)))
               if isinstance(index, ast.Slice) else evaluate(index, env))
        return evaluate(node.value, env)[key]
    if isinstance(node, ast.Attribute) and _is_math(node.value) and node.attr in MATH_CONSTANTS:
        return MATH_CONSTANTS[node.attr]
    if isinstance(node, ast.Call):
        function = _pure_function(node.func)
        if function is None:
            raise NotSplittable(ast.unparse(node.func))
        return function(*(evaluate(a, env) for a in node.args), **{k.arg: evaluate(k.value, env) for k in node.keywords})
    raise NotSplittable(type(node).__name__)


def _is_math(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "math"


def _pure_function(func: ast.AST):
    if isinstance(func, ast.Name):
        return PURE_BUILTINS.get(func.id)
    if isinstance(func, ast.Attribute) and _is_math(func.value):
        return PURE_MATH.get(func.attr)
    return None


class _Splitter(ast.NodeTransformer):
    """Replaces each solution call in an assert by `_call_<k>` and records the call."""

    def __init__(self, callables: dict[str, str], constants: dict[str, Any], refs: set[str], calls: list[Call]):
        self.callables, self.constants, self.refs, self.calls = callables, constants, refs, calls

    def _argument(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Name) and node.id in self.refs:
            return {"ref": node.id}
        if isinstance(node, ast.Name) and node.id in TYPES and node.id not in self.constants:
            return {"type": node.id}  # remove_datatype(values, int)
        if isinstance(node, ast.Starred):
            raise NotSplittable("starred argument")
        try:
            return encode(evaluate(node, self.constants))
        except (KeyError, TypeError, ValueError, ArithmeticError, IndexError) as e:
            raise NotSplittable(f"argument {ast.unparse(node)}: {e}") from None

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if isinstance(node.func, ast.Name) and node.func.id in self.callables:
            if any(k.arg is None for k in node.keywords):
                raise NotSplittable("**kwargs")
            call = Call(self.callables[node.func.id], [self._argument(a) for a in node.args],
                        {k.arg: self._argument(k.value) for k in node.keywords})
            self.calls.append(call)
            return ast.copy_location(ast.Name(id=f"_call_{len(self.calls) - 1}", ctx=ast.Load()), node)
        if _pure_function(node.func) is None:
            raise NotSplittable(f"call of {ast.unparse(node.func)}")
        node.args = [self.visit(a) for a in node.args]
        for keyword in node.keywords:
            keyword.value = self.visit(keyword.value)
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self.constants:
            return ast.copy_location(ast.Constant(self.constants[node.id]), node)
        if node.id != "math":
            raise NotSplittable(f"name {node.id}")
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        raise NotSplittable("lambda")


def _statements(body: list[ast.stmt], splitter: _Splitter, test: SplitTest, entry: str | None) -> None:
    for statement in body:
        if isinstance(statement, ast.Assert):
            expression = splitter.visit(statement.test)
            evaluate_shape(expression)
            test.asserts.append(expression)
        elif (isinstance(statement, ast.Assign) and len(statement.targets) == 1
              and isinstance(statement.targets[0], ast.Name)):
            try:
                splitter.constants[statement.targets[0].id] = evaluate(statement.value, splitter.constants)
            except (KeyError, TypeError, ValueError, ArithmeticError, IndexError):
                raise NotSplittable(f"assignment to {statement.targets[0].id}") from None
        elif isinstance(statement, ast.Pass) or isinstance(statement, ast.Import) and all(
                alias.name == "math" and alias.asname is None for alias in statement.names):
            continue
        elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue  # a docstring
        elif (isinstance(statement, ast.FunctionDef) and statement.name == "check" and entry
              and [a.arg for a in statement.args.args] == ["candidate"] and not statement.decorator_list):
            splitter.callables["candidate"] = entry
            _statements(statement.body, splitter, test, None)
            del splitter.callables["candidate"]
        else:
            raise NotSplittable(type(statement).__name__)


def evaluate_shape(expression: ast.expr) -> None:
    """Raise NotSplittable when `expression` uses a form `evaluate` does not know."""
    for node in ast.walk(expression):
        if isinstance(node, (ast.expr_context, ast.operator, ast.cmpop, ast.unaryop, ast.boolop, ast.keyword,
                             ast.Slice, ast.Constant, ast.Name, ast.List, ast.Tuple, ast.Set, ast.Dict,
                             ast.Compare, ast.BoolOp, ast.Subscript)):
            continue
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY or \
                isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            continue
        if isinstance(node, ast.Attribute) and _is_math(node.value) and \
                (node.attr in MATH_CONSTANTS or node.attr in PURE_MATH):
            continue
        if isinstance(node, ast.Call) and _pure_function(node.func) is not None:
            continue
        raise NotSplittable(type(node).__name__)


def split_test(source: str, functions: set[str], entry_point: str | None, refs: set[str],
               calls: list[Call]) -> SplitTest:
    """One test as asserts over calls (appended to `calls`); NotSplittable when it cannot be.
    `functions`: the solution's names the test may call; `entry_point`: HumanEval's `candidate`."""
    module = ast.parse(source)
    test = SplitTest()
    start = len(calls)
    try:
        _statements(module.body, _Splitter({f: f for f in functions}, {}, refs, calls), test, entry_point)
    except NotSplittable:
        del calls[start:]
        raise
    return test


def passes(test: SplitTest, results: dict[int, Any]) -> bool:
    """Whether every assert of `test` holds, given each call's decoded result (absent = it failed)."""
    env = {f"_call_{k}": value for k, value in results.items()}
    for expression in test.asserts:
        try:
            if not evaluate(expression, env):
                return False
        except Exception:  # noqa: BLE001 - a missing result or an impossible comparison fails the test
            return False
    return True
