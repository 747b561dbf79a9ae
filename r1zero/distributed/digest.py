"""Weight digests: a short hash of a state dict, compared across learner ranks and sampler actors
(`cluster.check_weights`) to show every worker holds the same weights after an update."""

from __future__ import annotations

import hashlib

import torch


def weight_digest(state_dict: dict) -> str:
    """A short hash of every tensor's name, dtype, shape and bytes: equal digests = identical weights."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]
