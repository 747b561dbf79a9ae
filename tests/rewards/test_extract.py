"""Finding the answer, the reasoning and the code in a completion."""

from r1zero.rewards.base import message_text
from r1zero.rewards.extract import (
    code_block,
    final_answer,
    last_boxed,
    plain_final_answer,
    reasoning,
    tagged_answer,
)


def test_the_last_answer_tag_wins():
    assert tagged_answer("<answer>1</answer> then <answer>\n 2 \n</answer>") == "2"
    assert tagged_answer("<answer>unclosed") is None


def test_boxed_with_nested_braces_and_fbox():
    assert last_boxed(r"\boxed{\frac{a}{b^{2}}} and \fbox{7}") == "7"
    assert last_boxed(r"\boxed {\{1, 2\}}") == r"\{1, 2\}"
    assert last_boxed(r"\boxed{unbalanced") is None


def test_answer_tags_come_before_boxes():
    assert final_answer(r"\boxed{1} <answer>2</answer>") == "2"
    assert final_answer(r"no tags, \boxed{3}") == "3"
    assert final_answer("nothing") is None
    assert plain_final_answer(r"<answer>so \boxed{4}</answer>") == "4"


def test_reasoning_with_and_without_tags():
    assert reasoning("<think> a </think><answer>1</answer>") == "a"
    assert reasoning("opened by the prompt </think><answer>1</answer>") == "opened by the prompt"
    assert reasoning("plain text <answer>1</answer>") == "plain text"
    assert reasoning("only text") == "only text"


def test_code_block_keeps_indentation_and_takes_the_last():
    text = "```python\nx = 1\n```\nthen\n```py\n    return 2\n```\n```javascript\nno\n```"
    assert code_block(text) == "    return 2"
    assert code_block("no code") is None


def test_conversational_completions():
    assert message_text([{"role": "assistant", "content": "hi"}]) == "hi"
    assert message_text([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]) == "a"
    assert message_text(None) == "" and message_text([]) == ""
