"""The `code` reward: run the completion's Python against the example's tests, verdicts outside.

The code is the last ```python block of the answer (or of the whole completion), else the answer
text, else the whole completion. Tests come from the first of these columns present:

- `tests`: a string of test code (one test), or a list of strings (each a test);
- `test_list` (MBPP): a list of assert statements, each a test; `test_setup_code` (and
  `test_imports`) run after the solution, in its process: they build inputs;
- `test` + `entry_point` (HumanEval): one test, `test` followed by `check(entry_point)`. When a
  `code_prompt` column (or `prompt`, outside TRL, which keeps that name for itself) holds the
  function's signature and docstring, it is put before the code, so a completion may be the
  function body alone, or a whole function without the prompt's imports;
- `input_output` (APPS-style stdin/stdout): {"inputs": [...], "outputs": [...]} (or its JSON);
  the program runs once per case and its output is compared here, token by token per line.

The reward is the fraction of tests that pass (0 or 1 for HumanEval's single `check`), None where
an example has no tests. The verdict is never computed where the solution runs: its sandboxed
process (`harness.solution_server`) gets only the solution and the call arguments and sends back
each call's result as plain data (`plain.py`); the asserts are evaluated here (`assert_plan.py`).
Nothing in that process holds a test, an expected value or a pass token, so walking the stack,
patching builtins, forging output or returning an object with an always-true `__eq__` earn
nothing. Tests that cannot be split into calls and comparisons (loops, helpers, `candidate`
passed around) run in a second sandbox (`harness.test_runner`) that holds the tests and reaches
the solution's sandbox only through a pipe of plain data; that costs a second interpreter start
per sample (about twice the time of a split sample) and refuses non-plain arguments and results.
There, a name the test calls that neither it nor the trusted `code_prompt` defines (HumanEval's
`encode_cyclic` when no prompt column is given) is the solution's, called through the pipe.

Each sample's outcome (passed, failed, timeout, memory, crash) is counted in `OUTCOMES`, which
`combine` drains into the step's metrics. Departures from HumanEval's evaluator: one sandbox per
sample rather than per test (each call has its own time budget, so a call that hangs costs only its
test), `__name__` is not "__main__" while the solution loads, and results must be plain values.
"""

from __future__ import annotations

import ast
import builtins
import json
import os
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from r1zero.rewards.assert_plan import PURE_BUILTINS, NotSplittable, SplitTest, passes, split_test
from r1zero.rewards.base import REWARDS, column, message_text
from r1zero.rewards.extract import code_block, tagged_answer
from r1zero.rewards.harness import solution_server, test_runner
from r1zero.rewards.plain import decode
from r1zero.rewards.sandbox import Limits, SandboxedProcess, SandboxResult, run_python, with_limits

OUTCOME_KINDS = ("passed", "failed", "timeout", "memory", "crash")


class OutcomeCounter:
    """Thread-safe counts of sample outcomes; `drain()` returns them and starts again."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, kind: str) -> None:
        with self._lock:
            self._counts[kind] += 1

    def drain(self) -> dict[str, int]:
        with self._lock:
            counts, self._counts = self._counts, Counter()
        return {kind: counts[kind] for kind in OUTCOME_KINDS}


OUTCOMES = OutcomeCounter()


def solution_code(completion_text: str) -> str:
    """The code to run: a ```python block (answer first), else the answer, else the completion."""
    answer = tagged_answer(completion_text)
    for source in (answer, completion_text):
        if source is not None and (block := code_block(source)) is not None:
            return block
    return answer if answer is not None else completion_text


@dataclass
class TestSuite:
    """An example's tests. `setup` runs in the solution's process after it (it builds inputs);
    `imports` also run before the tests; `entry_point`: each test defines HumanEval's
    `check(candidate)`, called with that function; `io_cases`: (stdin, expected stdout) pairs."""

    __test__ = False  # not a pytest test class, despite the name

    tests: list[str] = field(default_factory=list)
    setup: str = ""
    imports: str = ""
    code_prompt: str = ""
    entry_point: str | None = None
    io_cases: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.tests) + len(self.io_cases)


def _io_cases(value: Any) -> list[tuple[str, str]]:
    data = json.loads(value) if isinstance(value, str) else value
    return [(_text(i), _text(o)) for i, o in zip(data["inputs"], data["outputs"])]


def _text(value: Any) -> str:
    return "\n".join(map(str, value)) if isinstance(value, list) else str(value)


def example_tests(row: dict[str, Any]) -> TestSuite | None:
    """The tests in one example's columns, or None when it has none."""
    if row.get("tests") is not None:
        tests = row["tests"]
        return TestSuite([tests] if isinstance(tests, str) else list(tests))
    if row.get("test_list") is not None:
        return TestSuite(list(row["test_list"]), row.get("test_setup_code") or "",
                         "\n".join(row.get("test_imports") or []))
    if row.get("test") is not None and row.get("entry_point"):
        prompt = row.get("code_prompt") or row.get("prompt") or ""
        return TestSuite([row["test"]], code_prompt=prompt if isinstance(prompt, str) else "",
                         entry_point=row["entry_point"])
    if row.get("input_output") is not None:
        return TestSuite(io_cases=_io_cases(row["input_output"]))
    return None


def compose(code: str, code_prompt: str) -> str:
    """The program: the prompt's signature and docstring, then the body or the whole function."""
    if not code_prompt:
        return code
    first_line = next((line for line in code.splitlines() if line.strip()), "")
    if first_line[:1] in (" ", "\t"):  # a body continuing the prompt's `def`
        return code_prompt.rstrip("\n") + "\n" + code
    return code_prompt.rstrip("\n") + "\n\n\n" + code


@dataclass
class ProgramRun:
    passed: int
    total: int
    sandbox: SandboxResult  # how the solution's process ended, its stderr
    outcome: str = "failed"  # one of OUTCOME_KINDS
    how: str = "split"  # "split" (verdict from call results), "pair" (test sandbox), "io" (output)

    @property
    def score(self) -> float:
        return self.passed / self.total if self.total else 0.0


def _bound_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


def _top_level_names(tree: ast.AST) -> set[str]:
    return {node.name for node in getattr(tree, "body", []) if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def _parse(source: str) -> ast.AST:
    try:
        return ast.parse(source)
    except SyntaxError:
        return ast.Module(body=[], type_ignores=[])


def _called_names(tree: ast.AST) -> set[str]:
    return {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}


def _classify(box: SandboxResult, call_errors: list[str], loaded: bool, answered_all: bool) -> str:
    if box.memory_exceeded or "MemoryError" in call_errors or "MemoryError" in box.stderr:
        return "memory"
    if box.timed_out or box.cpu_exceeded or "timeout" in call_errors:
        return "timeout"
    if not loaded or not answered_all or (box.returncode or 0) != 0:
        return "crash"
    return "failed"


def _replies(stdout: str) -> dict[int, dict]:
    replies = {}
    for line in stdout.splitlines():
        try:
            message = json.loads(line)
            if type(message) is dict and type(message.get("id")) is int:
                replies.setdefault(message["id"], message)
        except (ValueError, RecursionError):
            continue
    return replies


def _run_split(code: str, suite: TestSuite, split: list[SplitTest], calls: list, limits: Limits,
               call_timeout_s: float) -> ProgramRun:
    spec = {"solution": code, "setup": suite.imports + "\n" + suite.setup, "requests_fd": 0, "replies_fd": 1,
            "call_timeout_s": call_timeout_s}
    requests = "".join(json.dumps(call.request(k)) + "\n" for k, call in enumerate(calls))
    box = run_python(solution_server(), json.dumps(spec) + "\n" + requests, limits)
    replies, results, errors = _replies(box.stdout), {}, []
    for k in range(len(calls)):
        message = replies.get(k, {})
        try:
            results[k] = decode(message["value"])
        except (KeyError, ValueError, TypeError, RecursionError):
            errors.append(str(message.get("error", "no reply")))
    passed = sum(passes(test, results) for test in split)
    outcome = "passed" if passed == len(split) else _classify(
        box, errors, -1 not in replies, all(k in replies for k in range(len(calls))))
    return ProgramRun(passed, len(split), box, outcome, "split")


def _run_pair(code: str, suite: TestSuite, limits: Limits, call_timeout_s: float) -> ProgramRun:
    tests = [t + (f"\n\ncheck({suite.entry_point})\n" if suite.entry_point else "") for t in suite.tests]
    trees = [_parse(t) for t in tests]
    prompt_names = _bound_names(_parse(suite.code_prompt)) - {suite.entry_point}
    refs = _bound_names(_parse(suite.setup))
    loaded = {n.id for tree in trees for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    bound = set().union(*(_bound_names(tree) for tree in trees), _bound_names(_parse(suite.imports)))
    free = loaded - bound - set(dir(builtins)) - prompt_names - refs
    modules = free & set(sys.stdlib_module_names)
    remote = (free - modules) | ({suite.entry_point} - {None})
    requests_r, requests_w = os.pipe()  # tests -> solution
    replies_r, replies_w = os.pipe()  # solution -> tests
    solution_spec = {"solution": code, "setup": suite.imports + "\n" + suite.setup, "requests_fd": requests_r,
                     "replies_fd": replies_w, "call_timeout_s": call_timeout_s}
    test_spec = {"tests": tests, "prompt": suite.code_prompt, "imports": suite.imports, "setup": suite.setup,
                 "remote_names": sorted(remote), "module_names": sorted(modules), "ref_names": sorted(refs), "to_fd": requests_w, "from_fd": replies_r,
                 "call_timeout_s": call_timeout_s}
    try:
        solution = SandboxedProcess(solution_server(), json.dumps(solution_spec) + "\n", limits,
                                    pass_fds=(requests_r, replies_w))
        try:
            checker = SandboxedProcess(test_runner(), json.dumps(test_spec), limits, pass_fds=(requests_w, replies_r))
        except BaseException:
            solution.finish()
            raise
    finally:
        for fd in (requests_r, requests_w, replies_r, replies_w):
            os.close(fd)
    checker.wait()
    verdicts = checker.finish()
    ended = solution.wait(timeout_s=1.0)  # it exits once the tests' pipe closes
    box = solution.finish()
    reported = {line.split()[1] for line in verdicts.stdout.splitlines() if line.startswith("pass ")}
    passed = len(reported & {str(i) for i in range(len(tests))})
    errors = ["timeout" for line in verdicts.stderr.splitlines() if "RemoteError: timeout" in line or "TimeoutError" in line]
    errors += ["MemoryError" for line in verdicts.stderr.splitlines() if "RemoteError: MemoryError" in line]
    if verdicts.timed_out:
        errors.append("timeout")
    outcome = "passed" if passed == len(tests) else _classify(
        box if ended else replace(box, returncode=0), errors, "solution failed" not in box.stderr,
        "the solution's process ended" not in verdicts.stderr)
    return ProgramRun(passed, len(tests), box, outcome, "pair")


def _same_output(got: str, expected: str) -> bool:
    """Equal up to whitespace: the same tokens on the same non-empty lines."""
    def lines(text: str) -> list[list[str]]:
        return [line.split() for line in text.strip().splitlines() if line.strip()]
    return lines(got) == lines(expected)


def _run_io(code: str, suite: TestSuite, limits: Limits) -> ProgramRun:
    passed, outcomes, box = 0, [], None
    for stdin, expected in suite.io_cases:
        box = run_python(code, stdin, limits)
        if box.returncode == 0 and not box.timed_out and _same_output(box.stdout, expected):
            passed += 1
        else:
            outcomes.append(_classify(box, [], True, True))
    outcome = "passed" if not outcomes else next(k for k in ("memory", "timeout", "crash", "failed") if k in outcomes)
    return ProgramRun(passed, len(suite.io_cases), box, outcome, "io")


def run_tests(code: str, tests: list[str] | TestSuite, setup: str = "", limits: Limits | None = None,
              test_timeout_s: float | None = None) -> ProgramRun:
    """Run `code` against `tests` (assert statements, or a TestSuite) with the verdict decided here.
    `test_timeout_s` bounds each call of a solution function (default: half the wall limit)."""
    limits = limits or Limits()
    suite = tests if isinstance(tests, TestSuite) else TestSuite(list(tests), setup)
    call_timeout_s = test_timeout_s or max(1.0, limits.wall_s / 2)
    if suite.io_cases:
        return _run_io(code, suite, limits)
    refs = _bound_names(_parse(suite.setup))
    # A builtin's name is the solution's when it defines it at top level (MBPP 126 defines `sum`);
    # such a call splits only with constant arguments, so it cannot wrap and fool a comparison.
    builtins_here = set(PURE_BUILTINS) - _top_level_names(_parse(code))
    calls: list = []
    try:
        split = [split_test(t, _called_names(_parse(t)) - builtins_here - refs, suite.entry_point, refs, calls)
                 for t in suite.tests]
    except (NotSplittable, SyntaxError):
        return _run_pair(code, suite, limits, call_timeout_s)
    return _run_split(code, suite, split, calls, limits, call_timeout_s)


def score_program(code: str, tests: list[str], setup: str = "", limits: Limits | None = None) -> float:
    """Fraction of `tests` that pass after running `code` (and `setup`) in the sandbox.

    >>> score_program("def add(a, b):\\n    return a + b", ["assert add(1, 2) == 3", "assert add(1, 1) == 3"])
    0.5
    """
    return run_tests(code, tests, setup, limits).score if tests else 0.0


TEST_COLUMNS = ("tests", "test_list", "test_setup_code", "test_imports", "test", "entry_point", "code_prompt",
                "prompt", "input_output")


@REWARDS.register("code")
def code_reward(prompts: Sequence, completions: Sequence, *, timeout_s: float = 10.0, memory_mb: int = 1024,
                workers: int | None = None, **columns: Any) -> list[float | None]:
    """Fraction of the example's tests the completion's code passes, run in the sandbox. Options:
    `timeout_s` (wall time per sample), `memory_mb` (per sample, all its processes together),
    `workers` (samples run at once; None = cores). Each sample's outcome goes to `OUTCOMES`.

    >>> code_reward(["Q"] * 2, ["<answer>```python\\ndef sq(x):\\n    return x * x\\n```</answer>",
    ...                         "<answer>def sq(x): return x + x</answer>"],
    ...             test_list=[["assert sq(3) == 9", "assert sq(2) == 4"]] * 2)
    [1.0, 0.5]
    """
    n = len(completions)
    limits = with_limits(None, wall_s=timeout_s, memory_mb=memory_mb)
    test_columns = {name: column(columns, name, n) for name in TEST_COLUMNS if name in columns}

    def score(i: int) -> float | None:
        suite = example_tests({name: values[i] for name, values in test_columns.items()})
        if suite is None or not len(suite):
            return None
        code = compose(solution_code(message_text(completions[i])), suite.code_prompt)
        run = run_tests(code, suite, limits=limits)
        OUTCOMES.add(run.outcome)
        return run.score

    if n <= 1:
        return [score(i) for i in range(n)]
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as threads:
        return list(threads.map(score, range(n)))


code_reward.outcomes = OUTCOMES  # `combine` drains it into the step's metrics
