"""DeepSeek-V3's auxiliary-loss-free load balancing, which transformers does not implement.

Each MoE router adds a per-expert bias `e_score_correction_bias` to its scores when choosing the
top-k experts (not when weighting them). After every optimizer step the bias of each overloaded
expert moves down by gamma and of each underloaded one up by gamma (V3 paper, sec. 2.1.2).
Departure: the load is counted over every position in the batch, padding included.
"""

from __future__ import annotations

import torch


class ExpertLoadBalancer:
    """Counts tokens per routed expert during forward passes and nudges the routing biases."""

    def __init__(self, model: torch.nn.Module, gamma: float):
        self.gamma = gamma
        self.routers = [m for m in model.modules() if hasattr(m, "e_score_correction_bias")]
        self.counts = [torch.zeros(r.e_score_correction_bias.numel()) for r in self.routers]
        self.hooks = [r.register_forward_hook(self._count(i)) for i, r in enumerate(self.routers)]

    def _count(self, i: int):
        def hook(module, inputs, outputs):
            topk_indices = outputs[2]  # (tokens, k)
            self.counts[i] += torch.bincount(topk_indices.flatten(), minlength=self.counts[i].numel())

        return hook

    @property
    def active(self) -> bool:
        return bool(self.routers)

    def imbalance(self) -> float:
        """max/mean tokens per expert since the last step, averaged over MoE layers (1.0 = balanced)."""
        ratios = [(c.max() / c.mean()).item() for c in self.counts if c.sum() > 0]
        return sum(ratios) / len(ratios) if ratios else 1.0

    @torch.no_grad()
    def step(self) -> float:
        """Update the biases from the counted load, reset the counts; returns the imbalance."""
        value = self.imbalance()
        for router, load in zip(self.routers, self.counts):
            if self.gamma > 0 and load.sum() > 0:
                router.e_score_correction_bias += self.gamma * torch.sign(load.mean() - load)
            load.zero_()
        return value

    def reset(self) -> None:
        for load in self.counts:
            load.zero_()

    def remove(self) -> None:
        for h in self.hooks:
            h.remove()
