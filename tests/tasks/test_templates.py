"""Prompt templates: the exact R1-Zero text, the tokenizer's chat template, plain text."""

from __future__ import annotations

import pytest

from r1zero import tasks
from r1zero.errors import UserError
from r1zero.tasks import render_prompt
from r1zero.types import Example

# Word for word from DESIGN.md (the R1 paper's table 1).
R1_ZERO = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with "
    "the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
    "</answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here "
    "</answer>. User: {prompt}. Assistant:"
)


@pytest.fixture(scope="module")
def tokenizer():
    from r1zero.models.build import train_tokenizer

    return train_tokenizer(vocab_size=384, seed=0)


def test_r1_zero_is_the_design_text():
    ex = Example(prompt="What is {x} in 12+30?", answer="42")
    assert render_prompt(ex, "r1_zero") == R1_ZERO.replace("{prompt}", "What is {x} in 12+30?")
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "2+2="}]
    assert render_prompt(Example(prompt=messages, answer="4")).endswith("User: 2+2=. Assistant:")


def test_plain_is_the_text_as_is():
    assert render_prompt(Example(prompt="123+45=", answer="168"), "plain") == "123+45="


def test_chat_uses_the_tokenizer_template(tokenizer):
    ex = Example(prompt="2+3=", answer="5")
    text = render_prompt(ex, "chat", tokenizer=tokenizer)
    assert text == tokenizer.apply_chat_template([{"role": "user", "content": "2+3="}],
                                                 add_generation_prompt=True, tokenize=False)
    assert text == "User: 2+3=\nAssistant: "
    with_system = render_prompt(ex, "chat", tokenizer=tokenizer, system="Think first.")
    assert with_system == "Think first.\nUser: 2+3=\nAssistant: "
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
             {"role": "user", "content": "2+3="}]
    assert render_prompt(Example(prompt=turns, answer="5"), "chat", tokenizer=tokenizer).endswith(
        "User: 2+3=\nAssistant: ")


def test_template_errors(tokenizer):
    ex = Example(prompt="q", answer="a")
    with pytest.raises(UserError, match="needs a tokenizer"):
        render_prompt(ex, "chat")
    with pytest.raises(UserError, match="unknown prompt template 'r1'.*chat, plain, r1_zero"):
        render_prompt(ex, "r1")
    assert tasks.TEMPLATES.names() == ["chat", "plain", "r1_zero"]
