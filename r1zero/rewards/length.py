"""Length shaping: DAPO's soft overlong punishment (`overlong`) and a plain length cost (`length`).

Both need each completion's length in tokens. They take it from column `completion_length`, else
from `completion_ids` (which TRL passes to every reward), else estimate it from the text as one
token per 4 characters (the usual rule of thumb for English BPE vocabularies; a character-level
tokenizer makes it 4x too short, so pass real lengths when they matter).

- `overlong` (DAPO, Yu et al. 2025, eq. 13): with L = max_len and C = cache_len,
  0 if len <= L - C; (L - C - len) / C if L - C < len <= L (linear from 0 down to -1); -1 beyond L.
  DAPO uses L = 20480, C = 4096; the defaults here (1024, 256) suit small models: set `max_len` to
  the sampler's max completion length.
- `length`: -min(len, max_len) / max_len, a cost in [-1, 0] that grows with every token (use a
  small weight, e.g. 0.1, to prefer shorter correct answers). Not from a paper; Kimi k1.5's
  group-relative length reward would need correctness and groups, which a reward does not see.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from r1zero.rewards.base import REWARDS, column, message_text

CHARS_PER_TOKEN = 4


def completion_lengths(completions: Sequence, columns: dict[str, Any]) -> list[int]:
    """Lengths in tokens: column `completion_length`, else `completion_ids`, else chars / 4."""
    n = len(completions)
    given = column(columns, "completion_length", n)
    ids = column(columns, "completion_ids", n)
    lengths = []
    for completion, length, token_ids in zip(completions, given, ids):
        if length is not None:
            lengths.append(int(length))
        elif token_ids is not None:
            lengths.append(len(token_ids))
        else:
            lengths.append(-(-len(message_text(completion)) // CHARS_PER_TOKEN))
    return lengths


def overlong_penalty(length: int, max_len: int, cache_len: int) -> float:
    """DAPO's soft overlong punishment for one completion of `length` tokens.

    >>> [overlong_penalty(n, max_len=100, cache_len=20) for n in (80, 90, 100, 101)]
    [0.0, -0.5, -1.0, -1.0]
    """
    if not 0 < cache_len <= max_len:
        raise ValueError(f"overlong: need 0 < cache_len <= max_len; got cache_len={cache_len}, max_len={max_len}")
    expected = max_len - cache_len
    if length <= expected:
        return 0.0
    return max(-1.0, (expected - length) / cache_len)


@REWARDS.register("overlong")
def overlong_reward(prompts: Sequence, completions: Sequence, *, max_len: int = 1024, cache_len: int = 256,
                    **columns: Any) -> list[float]:
    """DAPO's soft overlong punishment in [-1, 0] (options `max_len`, `cache_len`, in tokens).

    >>> overlong_reward(["Q"] * 3, ["a", "b", "c"], completion_length=[700, 896, 1024], max_len=1024, cache_len=256)
    [0.0, -0.5, -1.0]
    """
    return [overlong_penalty(n, max_len, cache_len) for n in completion_lengths(completions, columns)]


@REWARDS.register("length")
def length_reward(prompts: Sequence, completions: Sequence, *, max_len: int = 1024,
                  **columns: Any) -> list[float]:
    """-min(len, max_len) / max_len: a cost in [-1, 0] for every token (option `max_len`).

    >>> length_reward(["Q"] * 2, ["x" * 400, "y"], max_len=200)
    [-0.5, -0.005]
    """
    return [-min(n, max_len) / max_len for n in completion_lengths(completions, columns)]
