"""Pretraining documents that call the calculator, for the tiny-tools demo (recipes/tiny-tools.yaml).

A few documents (`pretrain.tool_share`, a few percent at most) solve a long product by a calculator
call, written exactly as a multi-turn rollout reads (r1zero.rollout.multiturn): the model's turn ends
with the call, the tool's reply follows, and the model's next turn copies it into the answer:

    347*86=<think><tool_call>{"name": "calculator", "arguments": {"expression": "347*86"}}</tool_call>
    <tool_response>29842</tool_response></think><answer>29842</answer>          (one line in the corpus)

More documents (`pretrain.long_share`) answer long products without the tool: they write the
problem out again with a result and copy that into the answer (`<think> 347*86=29842</think>
<answer>29842</answer>`: a guess, at this size), so the base calls the tool on a long product only
now and then (about tool_share / (tool_share + long_share)), and RL has a behaviour to find and
reinforce rather than one the base already has.

Why restate: a call must copy the problem into its JSON and the reply into the answer, and ~2,000
calls alone did not teach the tiny model to copy (teacher-forced, the first digit right and the rest
guessed: 1% of calls copied the problem exactly). Restating the problem, after 0-3 spaces so that no
fixed offset does the job, gives it tens of thousands of copies to learn copying by content from
(then 91-100% per digit); and with the guess written in the thinking, `<answer>` is a copy in every
long-product document, never the place a guess is made, so the answer copies the tool's reply.
The rest of the corpus is unchanged (r1zero.tasks.arithmetic).

Tokens: the tool tags are not single tokens of the tiny tokenizer, and byte-level BPE would merge
`</tool_call>`'s `>` with `<tool_response>`'s `<` into one token (`><`) that a rollout never has (there
the reply is tokenized on its own and appended). `turn_token_ids` tokenizes a document the way a
rollout builds it, each tool reply on its own, so pretraining shows the very ids of a rollout.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from r1zero.errors import UserError
from r1zero.tasks.arithmetic import MAX_SPACES, Problem
from r1zero.tasks.products import LongProducts
from r1zero.tools.format import (
    TOOL_RESPONSE_CLOSE,
    TOOL_RESPONSE_OPEN,
    render_tool_call,
    render_tool_response,
)

CALCULATOR = "calculator"
_RESPONSE = re.compile("(" + re.escape(TOOL_RESPONSE_OPEN) + ".*?" + re.escape(TOOL_RESPONSE_CLOSE) + ")", re.DOTALL)


def tool_solution(p: Problem) -> str:
    """The completion that asks the calculator for `p` and answers with its reply.

    >>> tool_solution(Problem(12, "*", 34))
    '<think><tool_call>{"name": "calculator", "arguments": {"expression": "12*34"}}</tool_call><tool_response>408</tool_response></think><answer>408</answer>'
    """
    call = render_tool_call(CALCULATOR, {"expression": p.text})
    return f"<think>{call}{render_tool_response(str(p.answer))}</think><answer>{p.answer}</answer>"


@dataclass(frozen=True)
class ToolDocs:
    """The long-product documents of the corpus: `tool_share` of all documents call the calculator,
    `long_share` answer directly; `line` gives one, or None for an ordinary arithmetic document."""

    tool_share: float
    long_share: float
    problems: LongProducts

    def __post_init__(self):
        if self.tool_share + self.long_share > 1:
            raise UserError(f"pretrain.tool_share + pretrain.long_share must be at most 1, got "
                            f"{self.tool_share} + {self.long_share}")

    @classmethod
    def from_config(cls, cfg) -> ToolDocs:
        return cls(cfg.tool_share, cfg.long_share,
                   LongProducts(cfg.long_min_digits, cfg.long_max_digits, cfg.long_b_digits))

    def line(self, rng: random.Random) -> str | None:
        """A long product (from the train split) with a calculator call or a direct answer; None with
        probability 1 - tool_share - long_share."""
        u = rng.random()
        if u >= self.tool_share + self.long_share:
            return None
        p = self.problems.problem(rng)
        if u < self.tool_share:
            return f"{p.text}={tool_solution(p)}"
        restated = f"{' ' * rng.randint(0, MAX_SPACES)}{p.text}={p.answer}"
        return f"{p.text}=<think>{restated}</think><answer>{p.answer}</answer>"


def turn_token_ids(tokenizer, text: str) -> list[int]:
    """`text`'s ids as a multi-turn rollout holds them: each `<tool_response>...</tool_response>`
    tokenized on its own, and the text between them too. A text without a tool reply gets exactly
    `tokenizer(text)`'s ids."""
    pieces = [p for p in _RESPONSE.split(text) if p]
    return [i for piece in pieces for i in tokenizer(piece, add_special_tokens=False)["input_ids"]]
