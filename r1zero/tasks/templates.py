"""Prompt templates: how an Example's question becomes the text a model continues.

- `r1_zero`: the DeepSeek-R1-Zero template (R1 paper, table 1), word for word, with the question in
  the `{prompt}` slot. The period after the slot stays even when the question ends with its own
  punctuation: the template is the paper's text, not an edited one.
- `chat`: the tokenizer's own chat template with the generation prompt added, optionally after a
  system message (how instruct models such as Qwen2.5-Instruct are prompted in TRL and verl).
- `plain`: the question as is (how the pretraining corpus writes arithmetic: "123+45=").

An Example whose prompt is chat messages renders its last user turn under `r1_zero` and `plain`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from r1zero.errors import UserError
from r1zero.registry import Registry
from r1zero.types import Example, Messages

R1_ZERO_TEMPLATE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves "
    "it. The assistant first thinks about the reasoning process in the mind and then provides the user "
    "with the answer. The reasoning process and answer are enclosed within <think> </think> and "
    "<answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> "
    "answer here </answer>. User: {prompt}. Assistant:"
)

TEMPLATES: Registry[Callable[..., str]] = Registry("prompt template")


def question_text(prompt: str | Messages) -> str:
    """The question of a prompt: the text itself, or the content of the last user message."""
    if isinstance(prompt, str):
        return prompt
    users = [m["content"] for m in prompt if m.get("role") == "user"]
    if not users:
        raise UserError("a chat prompt has no user message to render")
    return users[-1]


@TEMPLATES.register("r1_zero")
def r1_zero(example: Example, tokenizer: Any = None, system: str | None = None) -> str:
    return R1_ZERO_TEMPLATE.format(prompt=question_text(example.prompt))


@TEMPLATES.register("plain")
def plain(example: Example, tokenizer: Any = None, system: str | None = None) -> str:
    return question_text(example.prompt)


@TEMPLATES.register("chat")
def chat(example: Example, tokenizer: Any = None, system: str | None = None) -> str:
    if tokenizer is None:
        raise UserError("prompt template 'chat' needs a tokenizer")
    if not getattr(tokenizer, "chat_template", None):
        raise UserError(f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no chat template; "
                        f"use template 'r1_zero' or 'plain'")
    messages = ([{"role": "user", "content": example.prompt}] if isinstance(example.prompt, str)
                else list(example.prompt))
    if system is not None and not (messages and messages[0].get("role") == "system"):
        messages = [{"role": "system", "content": system}] + messages
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def render_prompt(example: Example, template: str = "r1_zero", tokenizer: Any = None,
                  system: str | None = None) -> str:
    """The prompt text for `example` under the named template.

    >>> render_prompt(Example(prompt="2+3=", answer="5"), "plain")
    '2+3='
    """
    return TEMPLATES.get(template)(example, tokenizer=tokenizer, system=system)
