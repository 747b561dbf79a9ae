"""The `code` reward: hand examples for each test format, HumanEval's canonical solutions, MBPP."""

import json
import re
import time

import pytest

from r1zero.rewards import get
from r1zero.rewards.code_exec import compose, solution_code

ADD = "def add(a, b):\n    return a + b\n"


def code(completions, **columns):
    return get("code")(["Q"] * len(completions), completions, **columns)


def test_where_the_code_is_taken_from():
    assert solution_code(f"<think>```python\nwrong\n```</think><answer>```python\n{ADD}```</answer>") == ADD.rstrip()
    assert solution_code(f"<answer>{ADD}</answer>") == ADD.strip()
    assert solution_code(f"Here it is:\n```python\n{ADD}```") == ADD.rstrip()
    assert solution_code(ADD) == ADD


def test_each_test_format_hand_computed():
    half_right = "def add(a, b):\n    return a + b if a else 0\n"
    # `tests` as one string (0 or 1), as a list (fraction), MBPP `test_list`, and no tests (None).
    assert code([ADD, half_right], tests=["assert add(1, 2) == 3\nassert add(0, 2) == 2"] * 2) == [1.0, 0.0]
    assert code([ADD, half_right], tests=[["assert add(1, 2) == 3", "assert add(0, 2) == 2"]] * 2) == [1.0, 0.5]
    assert code([half_right], test_list=[["assert add(1, 2) == 3", "assert add(0, 2) == 2", "assert Z == 1"]],
                test_setup_code=["Z = 1"]) == [2 / 3]
    assert code([ADD]) == [None]


def test_humaneval_style_row_with_a_body_only():
    prompt = "def add(a: int, b: int) -> int:\n    \"\"\"Sum.\"\"\"\n"
    test = "def check(candidate):\n    assert candidate(2, 3) == 5\n"
    body, whole = "```python\n    return a + b\n```", f"```python\n{ADD}```"
    assert code([body, whole, "```python\n    return a - b\n```"], test=[test] * 3, entry_point=["add"] * 3,
                code_prompt=[prompt] * 3) == [1.0, 1.0, 0.0]
    assert compose("    return 1", "def f():\n") == "def f():\n    return 1"


def test_conversational_completion_and_an_unbalanced_program():
    message = [{"role": "assistant", "content": f"<answer>```python\n{ADD}```</answer>"}]
    assert code([message, "def add(a, b:\n"], tests=["assert add(1, 2) == 3"] * 2) == [1.0, 0.0]


def test_humaneval_canonical_solutions_pass_and_empty_bodies_fail(read_data):
    rows = read_data("humaneval/HumanEval.jsonl")
    columns = {"test": [r["test"] for r in rows], "entry_point": [r["entry_point"] for r in rows]}
    canonical = [f"<think>.</think><answer>```python\n{r['prompt']}{r['canonical_solution']}```</answer>" for r in rows]
    empty = [f"<answer>```python\n{r['prompt']}    return None\n```</answer>" for r in rows]
    start = time.monotonic()
    passed = code(canonical, **columns)
    failed = code(empty, **columns)
    seconds = time.monotonic() - start
    print(f"\ncode on HumanEval: canonical solutions pass {passed.count(1.0)}/{len(rows)}, "
          f"`return None` bodies pass {failed.count(1.0)}/{len(rows)}; {2 * len(rows)} sandbox runs in {seconds:.1f} s")
    assert passed == [1.0] * len(rows) and len(rows) == 164
    assert failed == [0.0] * len(rows)


def test_mbpp_reference_solutions_and_partial_credit(read_data):
    rows = read_data("mbpp/mbpp.jsonl")[:40]
    columns = {"test_list": [r["test_list"] for r in rows], "test_setup_code": [r["test_setup_code"] for r in rows]}
    passed = code([f"```python\n{r['code']}\n```" for r in rows], **columns)
    # Keep only the first assert true: the reference code with each later assert made to fail.
    broken = {"test_list": [r["test_list"][:1] + [f"{t}\nassert False" for t in r["test_list"][1:]] for r in rows],
              "test_setup_code": columns["test_setup_code"]}
    partial = code([f"```python\n{r['code']}\n```" for r in rows], **broken)
    print(f"\ncode on MBPP (first {len(rows)}): reference solutions score 1 on {passed.count(1.0)}")
    assert passed == [1.0] * len(rows)
    assert partial == [1 / len(r["test_list"]) for r in rows]


@pytest.mark.slow
def test_every_mbpp_reference_solution_passes(read_data):
    rows = read_data("mbpp/mbpp.jsonl")
    columns = {"test_list": [r["test_list"] for r in rows], "test_setup_code": [r["test_setup_code"] for r in rows]}
    scores = code([f"```python\n{r['code']}\n```" for r in rows], **columns)
    assert len(rows) == 974 and [r["task_id"] for r, s in zip(rows, scores) if s != 1.0] == []


def test_humaneval_tests_that_cannot_be_split_run_beside_the_solution(read_data):
    """The 9 HumanEval tests with loops, imports or helpers go to a second sandbox; their
    canonical solutions pass there and `return None` bodies fail."""
    from r1zero.rewards.assert_plan import PURE_BUILTINS, NotSplittable, split_test
    from r1zero.rewards.code_exec import TestSuite, _called_names, _parse, run_tests

    def splits(row) -> bool:
        try:
            split_test(row["test"], _called_names(_parse(row["test"])) - set(PURE_BUILTINS), row["entry_point"],
                       set(), [])
            return True
        except NotSplittable:
            return False

    rows = [r for r in read_data("humaneval/HumanEval.jsonl") if not splits(r)]
    assert len(rows) == 9
    runs = [(run_tests(r["prompt"] + body, TestSuite([r["test"]], entry_point=r["entry_point"])))
            for r in rows for body in (r["canonical_solution"], "    return None\n")]
    assert {run.how for run in runs} == {"pair"}
    assert [run.score for run in runs] == [1.0, 0.0] * 9


def test_mbpp_setup_code_builds_inputs_in_the_solution_process(read_data):
    rows = [r for r in read_data("mbpp/mbpp.jsonl") if r["test_setup_code"].strip()]
    assert len(rows) == 2  # binary trees built from the solution's own Node class
    columns = {"test_list": [r["test_list"] for r in rows], "test_setup_code": [r["test_setup_code"] for r in rows]}
    assert code([f"```python\n{r['code']}\n```" for r in rows], **columns) == [1.0, 1.0]
    # The same classes, the tested function replaced by one that answers None.
    names = [re.match(r"assert \(?(\w+)\(", r["test_list"][0]).group(1) for r in rows]
    wrong = [f"```python\n{r['code']}\ndef {name}(*args):\n    return None\n```" for r, name in zip(rows, names)]
    assert code(wrong, **columns) == [0.0, 0.0]


def test_stdin_stdout_tests_compare_output_outside():
    cases = {"inputs": ["1 2\n", "10 -3\n"], "outputs": ["3\n", "7"]}
    right = "a, b = map(int, input().split())\nprint(a + b)\n"
    wrong = "import sys\nprint(3)\nsys.exit(0)\n"
    assert code([right, wrong, "print(open('/etc/hostname').read())"], input_output=[cases, cases, json.dumps(cases)]) \
        == [1.0, 0.5, 0.0]


def test_outcome_counts_by_kind():
    from r1zero.rewards.code_exec import OUTCOMES

    OUTCOMES.drain()
    programs = {"passed": ADD, "failed": "def add(a, b):\n    return a - b\n",
                "timeout": "def add(a, b):\n    while True:\n        pass\n",
                "memory": "def add(a, b):\n    return len(bytearray(8 * 2**30))\n", "crash": "def add(a, b:\n"}
    scores = get("code", timeout_s=3.0)(["Q"] * 5, list(programs.values()), tests=["assert add(1, 2) == 3"] * 5)
    assert scores == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert OUTCOMES.drain() == dict.fromkeys(programs, 1)
    assert OUTCOMES.drain() == dict.fromkeys(programs, 0)


def test_plain_values_round_trip_and_objects_do_not_cross():
    from collections import Counter, OrderedDict

    from r1zero.rewards.plain import dumps, loads

    values = [None, True, 3, -2.5, float("inf"), "é", [1, (2, 3)], {(1, 2): {"a": [None]}}, {1, 2}, frozenset({3})]
    assert [loads(dumps(v)) for v in values] == values
    assert type(loads(dumps((1,)))) is tuple and type(loads(dumps(True))) is bool
    assert loads(dumps(Counter("aab"))) == {"a": 2, "b": 1} and type(loads(dumps(OrderedDict(a=1)))) is dict
    with pytest.raises(TypeError):
        dumps(object())
    with pytest.raises(ValueError):
        loads('{"eval": "1"}')


def test_asserts_split_into_calls_and_checks_hand_computed():
    from r1zero.rewards.assert_plan import NotSplittable, passes, split_test

    calls = []
    test = split_test("assert abs(f(1, k=[2]) - 0.5) < 1e-6\nassert set(f('x')) == {'x'}\nassert not f(None)",
                      {"f"}, None, set(), calls)
    assert [(c.name, c.args, c.kwargs) for c in calls] == [("f", [1], {"k": [2]}), ("f", ["x"], {}), ("f", [None], {})]
    assert passes(test, {0: 0.5000001, 1: ["x", "x"], 2: 0}) and not passes(test, {0: 0.5, 1: ["x"], 2: 1})
    assert not passes(test, {0: 0.5, 1: ["x"]})  # a call without a result fails its test
    for unsplittable in ("for x in [1]:\n    assert f(x) == 1", "assert f(g(1)) == 1", "assert f(lambda: 1) == 1",
                         "y = f(1)\nassert y == 1", "import os\nassert f(1) == 1"):
        with pytest.raises(NotSplittable):
            split_test(unsplittable, {"f", "g"}, None, set(), [])


def test_outcome_counts_reach_the_rl_step_metrics():
    """combine -> score_in_process -> score_groups -> the metrics.jsonl row: counts by kind."""
    from r1zero.config import RLConfig
    from r1zero.distributed.rewards import score_in_process
    from r1zero.rewards import combine
    from r1zero.train.rl import Scored, score_groups, step_metrics
    from r1zero.types import Example, Rollout

    tests = ["assert add(1, 2) == 3"]
    _, _, counts = combine({"code": 1.0}, ["Q"] * 2, [ADD, "def add(a, b):\n    return 0\n"], {"tests": tests * 2})
    assert counts == {"reward/code/errors": 0, "reward/code/passed": 1, "reward/code/failed": 1,
                      "reward/code/timeout": 0, "reward/code/memory": 0, "reward/code/crash": 0}
    cfg = RLConfig(prompts_per_step=1, group_size=3)
    examples = [Example(prompt="add", answer="", meta={"tests": tests})]
    texts = [ADD, "def add(a, b):\n    return len(bytearray(8 * 2**30))\n", "def add(a, b:\n"]
    rollouts = [Rollout([1], [2], [0.0], "stop", text) for text in texts]
    scored = Scored()
    score_groups(cfg, examples, rollouts, {"code": 1.0}, "code", scored, score_in_process)
    row = step_metrics(1, scored, {}, 1.0, 1.0, 3.0, 10, 1e-4)
    assert {k: row[k] for k in row if k.startswith("reward/code/")} == {
        "reward/code/errors": 0, "reward/code/passed": 1, "reward/code/failed": 0, "reward/code/timeout": 0,
        "reward/code/memory": 1, "reward/code/crash": 1}


def test_builtin_names_objects_complex_numbers_and_types_as_in_mbpp():
    shadow = "def sum(a, b):\n    return a * b\n"  # MBPP 126 defines its own `sum`
    fooled = "def sorted(x):\n    return [1, 2]\ndef f(x):\n    return None\n"  # a redefinition cannot wrap a result
    objects = "class Box:\n    def __init__(self, v):\n        self.v = v\ndef unwrap(boxes):\n    return [b.v for b in boxes]\n"
    numbers = "def conj(z):\n    return z.conjugate()\ndef keep(values, kind):\n    return [v for v in values if type(v) is kind]\n"
    assert code([shadow, fooled, objects, numbers],
                tests=[["assert sum(2, 3) == 6"], ["assert sorted(f(3)) == [1, 2]"],
                       ["assert unwrap([Box(3), Box(4)]) == [3, 4]"],
                       ["assert conj(1+2j) == 1-2j", "assert keep([1, 'a', 2.5], str) == ['a']"]]) == [1.0, 0.0, 1.0, 1.0]
