"""Splitting a completion into reasoning and answer, as DeepSeek's API does.

`reasoning_content` is the text inside `<think> ... </think>`; `content` is the rest. Where this
departs from DeepSeek: the project's models wrap their final answer in `<answer> ... </answer>`
(the R1-Zero template), and those two tags are removed from `content`, keeping the text between
them, as is any stray think tag after the first `</think>` (a model forced out of its thinking by a
budget may close it again); both fields are stripped of surrounding whitespace. A prompt that already ends with `<think>`
(a chat template that opens the thinking for the model, as DeepSeek-R1's does) starts the
completion inside the reasoning. A completion without `<think>` has empty reasoning.

>>> split_reasoning("<think>3+9=12>2</think><answer>182</answer>")
('3+9=12>2', '182')
"""

from __future__ import annotations

from r1zero.serve.decoding import held_back

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_TAGS = ("<answer>", "</answer>")
TAGS = [THINK_OPEN, THINK_CLOSE, *ANSWER_TAGS]


def clean_content(text: str) -> str:
    for tag in TAGS:
        text = text.replace(tag, "")
    return text.strip()


def split_reasoning(text: str, starts_in_think: bool = False) -> tuple[str, str]:
    """(reasoning_content, content) of a completion; an unclosed `<think>` is all reasoning so far."""
    before = ""
    if not starts_in_think:
        start = text.find(THINK_OPEN)
        if start < 0:
            return "", clean_content(text)
        before, text = text[:start], text[start + len(THINK_OPEN) :]
    end = text.find(THINK_CLOSE)
    if end < 0:
        return text.strip(), clean_content(before)
    return text[:end].strip(), clean_content(before + text[end + len(THINK_CLOSE) :])


def prompt_opens_thinking(prompt_text: str) -> bool:
    return prompt_text.rstrip().endswith(THINK_OPEN)


class ReasoningStream:
    """Streams the two fields of one completion: `feed` text deltas, get (reasoning, content) deltas.

    Text that could be the start of a tag is held back until the next delta shows what it is, so a
    tag never leaks into either field half-written.
    """

    def __init__(self, starts_in_think: bool = False):
        self.starts_in_think = starts_in_think
        self.text = ""
        self.sent = ("", "")

    def feed(self, delta: str, final: bool = False) -> tuple[str, str]:
        self.text += delta
        safe = self.text if final else self.text[: len(self.text) - held_back(self.text, TAGS)]
        now = split_reasoning(safe, self.starts_in_think)
        out = tuple(new[len(old) :] if new.startswith(old) else "" for new, old in zip(now, self.sent))
        self.sent = tuple(new if new.startswith(old) else old for new, old in zip(now, self.sent))
        return out  # type: ignore[return-value]
