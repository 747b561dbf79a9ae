"""The `code` reward: run the completion's Python against the example's tests, in the sandbox.

The code is the last ```python block of the answer (or of the whole completion), else the answer
text, else the whole completion. Tests come from the first of these columns present:

- `tests`: a string of test code (one test), or a list of strings (each a test);
- `test_list` (MBPP): a list of assert statements, each a test; `test_setup_code` runs first;
- `test` + `entry_point` (HumanEval): one test, `test` followed by `check(entry_point)`. When a
  `code_prompt` column (or `prompt`, outside TRL, which keeps that name for itself) holds the
  function's signature and docstring, it is put before the code, so a completion may be the
  function body alone, or a whole function without the prompt's imports.

The reward is the fraction of tests that pass (0 or 1 for HumanEval's single `check`), None where
an example has no tests. All tests of a sample run in one sandboxed process (`sandbox.py`): the
code runs once, then each test in turn under its own alarm, so a test that hangs costs only
itself. A harness prints one line per passed test, tagged with a random nonce the program is not
given, so printing "passed" does not pass; this stops forged output, not a program determined to
find the nonce in its own process memory. Departure from HumanEval's evaluator: one process per
sample rather than per test, and `__name__` is not "__main__" while the solution is loaded, so a
stray `if __name__ == "__main__":` block that reads input does not fail the tests.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from r1zero.rewards.base import REWARDS, column, message_text
from r1zero.rewards.extract import code_block, tagged_answer
from r1zero.rewards.sandbox import Limits, SandboxResult, run_python, with_limits

# Runs inside the sandbox: reads {nonce, solution, setup, tests, test_timeout_s} from stdin.
HARNESS = r'''
import json, os, signal, sys

def _main():
    spec = json.loads(sys.stdin.read())
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # the spec (and nonce) cannot be read again
    report = os.fdopen(os.dup(1), "w")
    nonce = spec.pop("nonce")
    sys.stdout = open(os.devnull, "w")

    class TestTimeout(BaseException):
        pass

    def on_alarm(signum, frame):
        raise TestTimeout()

    signal.signal(signal.SIGALRM, on_alarm)
    namespace = {"__name__": "solution", "__builtins__": __builtins__}
    try:
        exec(compile(spec["solution"] + "\n" + spec["setup"], "solution.py", "exec"), namespace)
    except BaseException as exc:
        sys.stderr.write("solution failed: %s: %s\n" % (type(exc).__name__, str(exc)[:200]))
        return
    for i, test in enumerate(spec["tests"]):
        try:
            signal.setitimer(signal.ITIMER_REAL, spec["test_timeout_s"])
            exec(compile(test, "test_%d.py" % i, "exec"), namespace)
            signal.setitimer(signal.ITIMER_REAL, 0)
            report.write("%s %d\n" % (nonce, i))
            report.flush()
        except BaseException as exc:
            signal.setitimer(signal.ITIMER_REAL, 0)
            sys.stderr.write("test %d failed: %s: %s\n" % (i, type(exc).__name__, str(exc)[:200]))

_main()
'''


def solution_code(completion_text: str) -> str:
    """The code to run: a ```python block (answer first), else the answer, else the completion."""
    answer = tagged_answer(completion_text)
    for source in (answer, completion_text):
        if source is not None and (block := code_block(source)) is not None:
            return block
    return answer if answer is not None else completion_text


def example_tests(row: dict[str, Any]) -> tuple[str, list[str], str] | None:
    """(setup code, tests, code prompt) for one example's columns, or None when it has no tests."""
    if row.get("tests") is not None:
        tests = row["tests"]
        return "", [tests] if isinstance(tests, str) else list(tests), ""
    if row.get("test_list") is not None:
        imports = "\n".join(row.get("test_imports") or [])
        return imports + "\n" + (row.get("test_setup_code") or ""), list(row["test_list"]), ""
    if row.get("test") is not None and row.get("entry_point"):
        prompt = row.get("code_prompt") or row.get("prompt") or ""
        return "", [f"{row['test']}\n\ncheck({row['entry_point']})\n"], prompt if isinstance(prompt, str) else ""
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
    sandbox: SandboxResult  # how the process ended, its stderr (the harness notes failures there)

    @property
    def score(self) -> float:
        return self.passed / self.total if self.total else 0.0


def run_tests(code: str, tests: list[str], setup: str = "", limits: Limits | None = None,
              test_timeout_s: float | None = None) -> ProgramRun:
    """Run `code` (then `setup`), then each of `tests`, in one sandboxed process."""
    limits = limits or Limits()
    nonce = secrets.token_hex(16)
    spec = {"nonce": nonce, "solution": code, "setup": setup, "tests": tests,
            "test_timeout_s": test_timeout_s or max(1.0, limits.wall_s / 2)}
    result = run_python(HARNESS, stdin=json.dumps(spec), limits=limits)
    reported = {line.split()[1] for line in result.stdout.splitlines() if line.startswith(nonce + " ")}
    return ProgramRun(len(reported & {str(i) for i in range(len(tests))}), len(tests), result)


def score_program(code: str, tests: list[str], setup: str = "", limits: Limits | None = None) -> float:
    """Fraction of `tests` that pass after running `code` (and `setup`) in the sandbox.

    >>> score_program("def add(a, b):\\n    return a + b", ["assert add(1, 2) == 3", "assert add(1, 1) == 3"])
    0.5
    """
    return run_tests(code, tests, setup, limits).score if tests else 0.0


TEST_COLUMNS = ("tests", "test_list", "test_setup_code", "test_imports", "test", "entry_point", "code_prompt",
                "prompt")


@REWARDS.register("code")
def code_reward(prompts: Sequence, completions: Sequence, *, timeout_s: float = 10.0, memory_mb: int = 1024,
                workers: int | None = None, **columns: Any) -> list[float | None]:
    """Fraction of the example's tests the completion's code passes, run in the sandbox. Options:
    `timeout_s` (wall time per sample), `memory_mb`, `workers` (samples run at once; None = cores).

    >>> code_reward(["Q"] * 2, ["<answer>```python\\ndef sq(x):\\n    return x * x\\n```</answer>",
    ...                         "<answer>def sq(x): return x + x</answer>"],
    ...             test_list=[["assert sq(3) == 9", "assert sq(2) == 4"]] * 2)
    [1.0, 0.5]
    """
    n = len(completions)
    limits = with_limits(None, wall_s=timeout_s, memory_mb=memory_mb)
    test_columns = {name: column(columns, name, n) for name in TEST_COLUMNS if name in columns}

    def score(i: int) -> float | None:
        found = example_tests({name: values[i] for name, values in test_columns.items()})
        if found is None:
            return None
        setup, tests, code_prompt = found
        code = compose(solution_code(message_text(completions[i])), code_prompt)
        return score_program(code, tests, setup, limits)

    if n <= 1:
        return [score(i) for i in range(n)]
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as threads:
        return list(threads.map(score, range(n)))
