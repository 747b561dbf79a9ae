"""What a learner rank does with its group: average gradients, reduce metrics, shard under FSDP2.

Called by `LocalLearner` (r1zero.train.learner) when it is rank r of a torch.distributed group of
`world` > 1 ranks; see that module's docstring for why gradients are all-reduced by hand.
"""

from __future__ import annotations

import torch


def average_gradients(model, world: int) -> None:
    """All-reduce the mean gradient; a parameter with no gradient on any rank keeps none (see the docstring)."""
    import torch.distributed as dist

    params = [p for p in model.parameters() if p.requires_grad]
    present = torch.tensor([p.grad is not None for p in params], dtype=torch.int32, device=params[0].device)  # (P,)
    dist.all_reduce(present, op=dist.ReduceOp.MAX)
    params = [p for p, has in zip(params, present.tolist()) if has]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])  # (sum of sizes,) one collective
    dist.all_reduce(flat)
    flat /= world
    for p, g in zip(params, flat.split([g.numel() for g in grads])):
        p.grad = g.view_as(p)


def mean_over_ranks(metrics: dict) -> dict:
    """Each metric averaged over the ranks, or its maximum for names ending in _max."""
    import torch.distributed as dist

    names = sorted(metrics)
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"  # NCCL reduces GPU tensors only
    values = torch.tensor([metrics[k] for k in names], dtype=torch.float64, device=device)  # (K,)
    maxima = torch.tensor([metrics[k] if k.endswith("_max") else float("-inf") for k in names],
                          dtype=torch.float64, device=device)  # (K,)
    dist.all_reduce(values)
    dist.all_reduce(maxima, op=dist.ReduceOp.MAX)
    world = dist.get_world_size()
    return {k: (m if k.endswith("_max") else v / world) for k, v, m in zip(names, values.tolist(), maxima.tolist())}


def shard_fully(model) -> None:
    """FSDP2: each decoder layer, then the root, sharded over the process group."""
    from torch.distributed.fsdp import fully_shard

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    for layer in base.model.layers:
        fully_shard(layer)
    fully_shard(model)
