"""The Sampler protocol every backend (hf, vllm, ray) implements, and its sampling parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from r1zero.types import Rollout


@dataclass
class SamplingParams:
    max_new_tokens: int = 80
    temperature: float = 1.0  # 0 = greedy
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    stop: list[str] = field(default_factory=lambda: ["</answer>"])  # generation ends after these
    seed: int | None = None


class Sampler(Protocol):
    def generate(self, prompt_ids: list[list[int]], n: int, params: SamplingParams) -> list[Rollout]:
        """`n` rollouts per prompt, prompt-major: rollouts[i * n + j] is sample j of prompt i."""
        ...

    def update_weights(self, state_dict: dict) -> None:
        """Load the trainer's new weights before the next generate."""
        ...
