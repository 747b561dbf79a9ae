"""Finding the parts of a completion that rewards score: the answer, the reasoning, a code block.

The project's completion format is `<think> reasoning </think><answer> final answer </answer>`.
The final answer is the text inside the last `<answer>...</answer>`, or else the last `\\boxed{...}`
anywhere (what MATH-style models write without tags), as in open-r1 and simpleRL-reason. Unlike
open-r1, a `\\boxed{}` inside the answer tags is unwrapped for the string and number rewards.
"""

from __future__ import annotations

import re

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_CODE_BLOCK = re.compile(r"```[ \t]*(python3?|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def tagged_answer(text: str) -> str | None:
    """The stripped text inside the last `<answer>...</answer>`, or None.

    >>> tagged_answer("<think>2+2</think> <answer> 4 </answer>")
    '4'
    """
    found = _ANSWER.findall(text)
    return found[-1].strip() if found else None


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (braces balanced), or None.

    >>> last_boxed(r"so \\boxed{\\frac{1}{2}} or \\boxed{3}")
    '3'
    >>> last_boxed(r"\\boxed{\\frac{1}{2}}")
    '\\\\frac{1}{2}'
    """
    starts = [m.end() for m in _BOXED.finditer(text)]
    for start in reversed(starts):
        depth = 1
        for i in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                return text[start:i].strip()
    return None


def final_answer(text: str) -> str | None:
    """The answer in `<answer>` tags, else the last `\\boxed{}`, else None."""
    answer = tagged_answer(text)
    return answer if answer is not None else last_boxed(text)


def plain_final_answer(text: str) -> str | None:
    """`final_answer` with a `\\boxed{}` inside the answer tags unwrapped.

    >>> plain_final_answer(r"<answer>The answer is \\boxed{12}.</answer>")
    '12'
    """
    answer = final_answer(text)
    if answer is None:
        return None
    boxed = last_boxed(answer)
    return boxed if boxed is not None else answer


def reasoning(text: str) -> str:
    """The reasoning: inside `<think>...</think>`; before `</think>` when the prompt opened the tag;
    before `<answer>` when there are no think tags; else the whole text.

    >>> reasoning("Let me see.</think><answer>4</answer>")
    'Let me see.'
    """
    end = text.find("</think>")
    if end >= 0:
        start = text.rfind("<think>", 0, end)
        return text[start + len("<think>") if start >= 0 else 0:end].strip()
    start = text.find("<answer>")
    return (text[:start] if start >= 0 else text).strip()


def code_block(text: str) -> str | None:
    """The last fenced code block marked python (or unmarked), indentation kept, or None.

    >>> code_block("Here:\\n```python\\ndef f():\\n    return 1\\n```")
    'def f():\\n    return 1'
    """
    blocks = [body for lang, body in _CODE_BLOCK.findall(text)]
    return blocks[-1].strip("\n").rstrip() if blocks else None
