"""The readability rule (rewards/readability.py) on hand-written completions, each with its reason."""

import random

import pytest

from r1zero import rewards
from r1zero.rewards.readability import is_readable, readability_reasons
from r1zero.tasks.arithmetic import ArithmeticGenerator, answer_first_line, corpus_line

READABLE = [  # 123+59, 402-38, 76*5 in every layout the corpus writes
    "<think>3+9+0=12>2;2+5+1=8>82;1+0+0=1>182</think><answer>182</answer>",
    "<think>123+59:3+9+0=12>2;12+5:2+5+1=8>82;1+:1+0+0=1>182</think><answer>182</answer>",
    "<think>12-8-0=4>4;10-3-1=6>64;4-0-1=3>364</think><answer>364</answer>",
    "<think>6*5=30+0=30>0;7*5=35+3=38>80;0*5=0+3=3>380</think><answer>380</answer>",
    # a slip carried through: wrong, but a reader can follow every step
    "<think>3+9+0=13>3;2+5+1=8>83;1+0+0=1>183</think><answer>183</answer>",
    # a re-check that corrects the slip, with the spacing the corpus varies
    "<think>3+9+0=13~12!  >2; 2+5+1=8~8 >82;1+0+0=1>182</think><answer>182</answer>",
    # a difference's leading zeros are dropped in the answer
    "<think>5-9-0=6>6;10-9-1=0>06;1-0-1=0>006</think><answer>6</answer>",
    # the answer-first layout: a guess, verified by the work, corrected with `!`
    "<think>181~123+59:3+9+0=12>2;12+5:2+5+1=8>82;1+:1+0+0=1>182!</think><answer>182</answer>",
    "<think>123+59=181~123+59:3+9+0=12>2;12+5:2+5+1=8>82;1+:1+0+0=1>182!</think><answer>182</answer>",
    "\n<think>3+9+0=12>2;2+5+1=8>82;1+0+0=1>182</think>\n<answer> 182 </answer>\n",
]

UNREADABLE = [  # completion, the reason given
    ("<think></think><answer>182</answer>", "no reasoning"),
    ("<think>182</think><answer>182</answer>", "step 1 is not a column step"),  # a bare guess
    ("<think>123+59=182</think><answer>182</answer>", "step 1 is not a column step"),  # restating the problem
    ("3+9+0=12>2;2+5+1=8>82;1+0+0=1>182<answer>182</answer>", "not <think>...</think><answer>...</answer>"),
    ("<think>3+9+0=12>2;2+5+1=8>82;1+0+0=1>182</think><answer>182</answer>\n182",
     "not <think>...</think><answer>...</answer>"),
    ("<think>3+9+0=12>2;2+5+1=8>82;1+0+0=1>182</think><answer>one hundred</answer>", "answer is not an integer"),
    # garbage: a cut-off step, stray text, another script
    ("<think>3+9+0=12>2;2+5+1=8>82;1+0+</think><answer>182</answer>", "step 3 is not a column step"),
    ("<think>3+9+0=12>2;so 2+5+1=8>82;1+0+0=1>182</think><answer>182</answer>", "step 2 is not a column step"),
    ("<think>3+9+0=12>2;2+5+1=8>82;因为1+0+0=1>182</think><answer>182</answer>", "step 3 is not a column step"),
    ("<think>3+9+0=12>2;2+5+1=8>82;1+0+0=1>182;</think><answer>182</answer>", "step 4 is not a column step"),
    # notation: an operator or layout switched mid-solution
    ("<think>3+9-0=12>2;2+5+1=8>82;1+0+0=1>182</think><answer>182</answer>", "a step mixes operators"),
    ("<think>3+9+0=12>2;2*5=10+1=11>12;1+0+0=1>112</think><answer>112</answer>", "the steps switch notation"),
    ("<think>123+59:3+9+0=12>2;2+5+1=8>82;1+0+0=1>182</think><answer>182</answer>", "the steps switch notation"),
    # the work does not read forwards: a loop, a step that writes another digit, a skipped column
    ("<think>3+9+0=12>2;3+9+0=12>2;3+9+0=12>2;3+9+0=12>2</think><answer>2</answer>",
     "step 2 does not extend the partial result"),
    ("<think>3+9+0=12>2;2+5+1=8>72;1+0+0=1>172</think><answer>172</answer>",
     "step 2 does not extend the partial result"),
    ("<think>3+9+0=12>2;1+0+0=1>182</think><answer>182</answer>", "step 2 does not extend the partial result"),
    ("<think>3+9+0=13~12!>3;2+5+1=8>83</think><answer>83</answer>", "step 1 does not extend the partial result"),
    # the summary contradicts the reasoning
    ("<think>3+9+0=12>2;2+5+1=8>82;1+0+0=1>182</think><answer>181</answer>", "the answer is not the work's result"),
]


@pytest.mark.parametrize("text", READABLE)
def test_readable_completions(text):
    assert readability_reasons(text) == []


@pytest.mark.parametrize("text,reason", UNREADABLE)
def test_unreadable_completions_and_why(text, reason):
    assert readability_reasons(text) == [reason]


def test_the_registered_reward_scores_one_or_zero_and_honours_an_opened_think():
    fn = rewards.get("readability")
    completions = [READABLE[0], UNREADABLE[0][0]]
    assert fn(["123+59="] * 2, completions) == [1.0, 0.0]
    assert fn(["User: 123+59 Assistant: <think>"], [READABLE[0].removeprefix("<think>")]) == [1.0]


def test_every_worked_solution_the_corpus_writes_is_readable_and_every_direct_one_is_not():
    gen, rng = ArithmeticGenerator(1, 4), random.Random(0)
    for i in range(2000):
        p = gen.problem(rng)
        line = corpus_line(p, rng, direct_share=0.2, slip_share=0.3, recheck_share=0.3, spacing=0.3,
                           layout=("columns", "remainder")[i % 2])
        completion = line[len(p.text) + 1:]
        assert is_readable(completion) == (not completion.startswith("<think></think>")), completion
        verified = answer_first_line(p, rng, verify_share=1.0, guess_wrong=0.5, slip_share=0.3)
        assert is_readable(verified[len(p.text) + 1:]), verified
