"""A difficulty curriculum that needs no human: step up when the current level is solved.

It keeps the pass rate of each level over a moving window of recent samples. The frontier (highest
unlocked level) starts at the easiest; when it has at least `min_samples` results in its window and
passes at least `threshold` of them, the next level unlocks. Each draw is the frontier with
probability `frontier_share`; otherwise a lower level still being learnt (too few samples, or a pass
rate strictly between 0 and 1), so nothing solved is drawn again and what was learnt is reviewed.
Levels never step down.

This follows the idea of DAPO's dynamic sampling and of reasoning-gym's curricula (groups where every
sample is right or every one wrong give GRPO zero advantage, so spend rollouts where 0 < p < 1)
but decides on levels, not prompts, and keeps no per-prompt state.

Use in a loop:

    level = curriculum.next_level(rng)
    example = task.sample(rng, level=level)
    ...
    curriculum.update(example.meta["difficulty"], [reward > 0 for reward in group_rewards])

For exact resume save `state_dict()` with the RNG state that drives `next_level`.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from r1zero.errors import UserError


class Curriculum:
    """Pass rates per level over a window of `window` results; unlock the next at >= `threshold`."""

    def __init__(self, levels: Sequence[int], threshold: float = 0.8, window: int = 64,
                 min_samples: int = 16, frontier_share: float = 0.5):
        if not levels:
            raise UserError("a curriculum needs at least one difficulty level")
        if not (0 < threshold <= 1 and 1 <= min_samples <= window and 0 <= frontier_share <= 1):
            raise UserError(f"curriculum needs 0 < threshold <= 1, 1 <= min_samples <= window and "
                            f"0 <= frontier_share <= 1; got threshold={threshold}, min_samples={min_samples}, "
                            f"window={window}, frontier_share={frontier_share}")
        self.levels = tuple(levels)
        self.threshold, self.window, self.min_samples = threshold, window, min_samples
        self.frontier_share = frontier_share
        self.frontier = 0  # index into levels of the highest unlocked level
        self.results = [deque(maxlen=window) for _ in self.levels]

    @property
    def level(self) -> int:
        """The highest unlocked level."""
        return self.levels[self.frontier]

    def pass_rate(self, level: int) -> float | None:
        """Mean over the window, or None before `min_samples` results."""
        window = self.results[self._index(level)]
        return sum(window) / len(window) if len(window) >= self.min_samples else None

    def pass_rates(self) -> dict[int, float | None]:
        return {level: self.pass_rate(level) for level in self.levels}

    def next_level(self, rng: random.Random) -> int:
        """The level to draw the next example from."""
        learning = [level for level in self.levels[: self.frontier] if self._learning(level)]
        if learning and rng.random() >= self.frontier_share:
            return rng.choice(learning)
        return self.level

    def update(self, level: int, correct: Iterable[bool]) -> bool:
        """Record results for `level`; True when this unlocked the next level."""
        index = self._index(level)
        self.results[index].extend(bool(c) for c in correct)
        rate = self.pass_rate(level)
        if index == self.frontier < len(self.levels) - 1 and rate is not None and rate >= self.threshold:
            self.frontier += 1
            return True
        return False

    def update_groups(self, levels: Sequence[int], correct: Sequence[bool]) -> None:
        """Record groups of equal size, prompt-major: `correct` holds len(levels) groups, one per level."""
        size = len(correct) // max(len(levels), 1)
        for i, level in enumerate(levels):
            self.update(level, correct[i * size:(i + 1) * size])

    def state_dict(self) -> dict[str, Any]:
        """Plain lists and numbers (JSON-safe)."""
        return {"levels": list(self.levels), "frontier": self.frontier,
                "results": [list(window) for window in self.results]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["levels"]) != list(self.levels):
            raise UserError(f"curriculum state is for levels {state['levels']}, not {list(self.levels)}")
        self.frontier = int(state["frontier"])
        self.results = [deque(window, maxlen=self.window) for window in state["results"]]

    def _learning(self, level: int) -> bool:
        rate = self.pass_rate(level)
        return rate is None or 0 < rate < 1

    def _index(self, level: int) -> int:
        if level not in self.levels:
            raise UserError(f"level {level!r} is not in the curriculum's levels {list(self.levels)}")
        return self.levels.index(level)
