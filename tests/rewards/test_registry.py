"""The reward registry: names, options, the TRL contract, and every docstring example."""

import doctest
import importlib
import inspect

import pytest

from r1zero import rewards
from r1zero.errors import UserError

MODULES = ["base", "extract", "format", "match", "math_answer", "countdown", "code_exec", "language", "length",
           "reasoning_gym_score", "combine", "sandbox", "process_pool", "readability"]
REGISTERED = ["code", "countdown", "exact", "format", "format_lenient", "language", "length", "math", "numeric",
              "overlong", "readability", "reasoning_gym"]


def test_names_lists_every_reward():
    assert rewards.names() == REGISTERED


@pytest.mark.parametrize("name", REGISTERED)
def test_every_reward_takes_the_trl_signature_and_documents_an_example(name):
    fn = rewards.get(name)
    params = inspect.signature(fn).parameters
    assert list(params)[:2] == ["prompts", "completions"]
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    assert ">>> " in (fn.__doc__ or "")
    # A batch without the reward's columns: one answer per completion, each a float or None.
    scores = fn(["Q", "Q"], ["<think>a</think><answer>1</answer>", "x"])
    assert len(scores) == 2 and all(s is None or isinstance(s, float) for s in scores)


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(f"r1zero.rewards.{module}"))
    assert result.failed == 0


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(UserError, match="unknown reward 'accuracy'.*format_lenient"):
        rewards.get("accuracy")


def test_options_are_bound_and_checked():
    overlong = rewards.get("overlong", max_len=100, cache_len=20)
    assert overlong.__name__ == "overlong"
    assert overlong(["Q"], ["a"], completion_length=[90]) == [-0.5]
    with pytest.raises(UserError, match="no option 'max_length'; options: max_len, cache_len"):
        rewards.get("overlong", max_length=100)
    with pytest.raises(UserError, match="no option 'strict'; options: none"):
        rewards.get("format", strict=True)


def test_a_column_of_the_wrong_length_is_a_user_error():
    with pytest.raises(UserError, match="column 'answer' must be a list of 2 values"):
        rewards.get("exact")(["Q", "Q"], ["a", "b"], answer=["a"])
