"""Per-token work of the serving engine: next-token sampling, incremental detokenising, stop strings.

- `sample_tokens`: one next token per row of a batch, each row with its own temperature, top-p,
  top-k and (optionally) its own seeded generator, so a seeded request samples the same tokens
  whatever else shares its batch (up to the float noise of padding); drawn as the RL sampler and
  eval draw (r1zero.rollout.sampling).
- `IncrementalDetokenizer`: the text of each new token without re-decoding the whole completion
  (the prefix/read offsets of Hugging Face TGI and vLLM); a token that ends inside a multi-byte
  character yields no text until the character is complete.
- `StopText`: OpenAI's `stop` semantics: generation ends at the first stop string, which is not
  part of the returned text; text that could be the start of a stop string is held back from the
  stream until it is clearly not one.
"""

from __future__ import annotations

import torch

from r1zero.rollout.sampling import draw_tokens, uniform_per_row


def sample_tokens(logits: torch.Tensor, temperature: torch.Tensor, top_p: torch.Tensor, top_k: torch.Tensor,
                  generators: list[torch.Generator | None], default: torch.Generator) -> torch.Tensor:
    """Next token ids (B,) from `logits` (B, V); a row with temperature 0 is greedy. Drawn by
    r1zero.rollout.sampling.draw_tokens (top-k, then top-p over the survivors, as in vLLM and
    `generate`), with each row's uniform from its own generator, or `default`."""
    tokens, _ = draw_tokens(logits.float(), temperature, top_p, top_k, uniform_per_row(generators, default))
    return tokens


class IncrementalDetokenizer:
    """Text deltas of a growing list of token ids; special tokens (EOS, padding) decode to nothing."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix_offset = 0  # decoding starts a few tokens back, so merges across tokens are right
        self.read_offset = 0  # tokens up to here are already turned into text

    def push(self, token: int) -> str:
        self.ids.append(token)
        decode = self.tokenizer.decode
        prefix = decode(self.ids[self.prefix_offset : self.read_offset], skip_special_tokens=True)
        full = decode(self.ids[self.prefix_offset :], skip_special_tokens=True)
        if full.endswith("\ufffd") or len(full) <= len(prefix):
            return ""  # half a character (or nothing) so far
        self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
        return full[len(prefix) :]


def held_back(text: str, patterns: list[str]) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of one of `patterns`."""
    best = 0
    for p in patterns:
        for n in range(min(len(p) - 1, len(text)), best, -1):
            if text.endswith(p[:n]):
                best = n
                break
    return best


class StopText:
    """The completion text of one sequence, cut at the first stop string; `ready` is safe to stream."""

    def __init__(self, stop: list[str]):
        self.stop = [s for s in stop if s]
        self.longest = max(map(len, self.stop), default=0)
        self.text = ""
        self.stopped = False

    def push(self, delta: str) -> None:
        """Add `delta`; if a stop string now appears, cut the text before it and set `stopped`."""
        start = max(0, len(self.text) - self.longest + 1)
        self.text += delta
        hits = [i for i in (self.text.find(s, start) for s in self.stop) if i >= 0]
        if hits:
            self.text, self.stopped = self.text[: min(hits)], True

    def ready(self, final: bool) -> int:
        """How much of the text may be streamed: all of it at the end, else up to a possible stop start."""
        return len(self.text) if final or self.stopped else len(self.text) - held_back(self.text, self.stop)
