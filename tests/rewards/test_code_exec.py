"""The `code` reward: hand examples for each test format, HumanEval's canonical solutions, MBPP."""

import time

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
