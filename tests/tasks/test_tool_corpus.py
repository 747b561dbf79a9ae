"""The calculator documents of the tiny-tools corpus (r1zero.tasks.tool_corpus) and the long products task."""

from __future__ import annotations

import json
import random
import re

import pytest

from r1zero import tasks
from r1zero.config import PretrainConfig, build_section
from r1zero.errors import UserError
from r1zero.tasks.arithmetic import Problem, is_test
from r1zero.tasks.products import LongProducts
from r1zero.tasks.tool_corpus import tool_solution, turn_token_ids
from r1zero.tools import ToolBox, parse_tool_calls
from r1zero.train.corpus import corpus_batch, lm_batch

PROBLEM = re.compile(r"^(\d+)\*(\d+)=")


def problem_of(text: str) -> Problem:
    a, b = text.split("*")
    return Problem(int(a), "*", int(b))


def corpus(steps: int = 80, **fields) -> list[str]:
    cfg = PretrainConfig(tool_share=0.03, long_share=0.37, **fields)
    return [doc for step in range(1, steps + 1) for doc in corpus_batch(cfg, 0, step)]


def test_tool_documents_are_a_few_percent_and_long_products_mostly_answered_directly():
    docs = corpus()
    tool = [d for d in docs if "<tool_call>" in d]
    long = [d for d in docs if (m := PROBLEM.match(d)) and len(m.group(2)) == 2]
    assert 0.015 < len(tool) / len(docs) < 0.05  # 3% asked for, 2560 documents
    assert 0.3 < len(long) / len(docs) < 0.45
    assert set(tool) <= set(long)
    assert 0.03 < len(tool) / len(long) < 0.12  # the base should call on a long product now and then only
    for doc in set(long) - set(tool):  # the others restate the problem and answer directly
        a, b = map(int, PROBLEM.match(doc).groups())
        assert re.fullmatch(rf"{a}\*{b}=<think> {{0,3}}{a}\*{b}={a * b}</think><answer>{a * b}</answer>", doc), doc
    assert not any("<tool_call>" in d for d in corpus_batch(PretrainConfig(), 0, 1))  # off by default


def test_each_call_parses_names_the_calculator_and_carries_the_problem():
    docs = [d for d in corpus() if "<tool_call>" in d]
    assert docs
    for doc in docs:
        a, b = map(int, PROBLEM.match(doc).groups())
        (call,) = parse_tool_calls(doc)
        assert call.error is None and call.name == "calculator"
        assert call.arguments == {"expression": f"{a}*{b}"}
        reply = ToolBox.from_specs(["calculator"]).run(call).text
        assert reply == str(a * b)
        assert doc.endswith(f"<tool_response>{reply}</tool_response></think><answer>{a * b}</answer>")
        assert not is_test(Problem(a, "*", b))  # training never shows a held-out product
        assert json.loads(call.raw)["arguments"]["expression"] == f"{a}*{b}"


def test_tool_solution_is_what_a_rollout_reads():
    text = tool_solution(Problem(12, "*", 34))
    assert text.startswith('<think><tool_call>{"name": "calculator", "arguments": {"expression": "12*34"}}'
                           "</tool_call><tool_response>408</tool_response>")
    assert text.endswith("</think><answer>408</answer>")


def test_turn_token_ids_tokenize_the_tool_reply_on_its_own(tiny_model):
    from r1zero.models.io import load_tokenizer

    tok = load_tokenizer(tiny_model)
    doc = "12*34=" + tool_solution(Problem(12, "*", 34))
    call, rest = doc.split("<tool_response>")
    reply, answer = ("<tool_response>" + rest).split("</tool_response>")
    pieces = [call, reply + "</tool_response>", answer]
    expected = [i for p in pieces for i in tok(p, add_special_tokens=False)["input_ids"]]
    assert turn_token_ids(tok, doc) == expected
    assert tok.decode(expected) == doc
    plain = "123+59=<think>3+9+0=12>2</think><answer>182</answer>"
    assert turn_token_ids(tok, plain) == tok(plain, add_special_tokens=False)["input_ids"]
    batch = lm_batch(tok, [doc])
    assert batch["input_ids"][0, : len(expected)].tolist() == expected


@pytest.mark.parametrize("key, value", [("tool_share", 1.5), ("long_share", -0.1), ("long_b_digits", 0),
                                        ("long_max_digits", 9)])
def test_out_of_range_knobs_are_one_clear_error(key, value):
    with pytest.raises(UserError, match=rf"pretrain\.{key}: .* out of range; expected a value in"):
        build_section("pretrain", "pretrain", PretrainConfig, {key: value})


def test_shares_that_do_not_fit_in_one_corpus_are_refused():
    with pytest.raises(UserError, match=r"tool_share \+ pretrain.long_share must be at most 1"):
        corpus_batch(PretrainConfig(tool_share=0.6, long_share=0.6), 0, 1)
    with pytest.raises(UserError, match="long products need 1 <= min_digits <= max_digits"):
        corpus_batch(PretrainConfig(tool_share=0.1, long_min_digits=4, long_max_digits=3), 0, 1)


def test_products_task_holds_out_by_arithmetics_rule():
    task = tasks.get("products", min_digits=2, max_digits=3, b_digits=2)
    test = task.examples("test", n=50)
    assert len({e.meta["id"] for e in test}) == 50
    assert test == tasks.get("products").examples("test", n=50, seed=7)  # the same whatever the seed
    for e in test:
        a, b = map(int, e.meta["id"].split("*"))
        assert is_test(problem_of(e.meta["id"])) and 10 <= b <= 99 and 10 <= a <= 999 and e.answer == str(a * b)
    rng = random.Random(0)
    train = [task.sample(rng) for _ in range(300)]
    assert not any(is_test(problem_of(e.meta["id"])) for e in train)
    assert {e.meta["difficulty"] for e in train} == {2, 3}
    with pytest.raises(UserError, match="long products need"):
        LongProducts(3, 2, 2)
