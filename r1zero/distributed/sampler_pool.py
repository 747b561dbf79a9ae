"""Sampler `ray`: a pool of sampler actors (each an `hf` or `vllm` sampler) on one machine or many.

`generate` cuts the prompts into one contiguous shard per actor; shard k is sampled with seed
`shard_seed(seed, k)` (shard 0 keeps the seed, so a one-actor pool samples what `hf` would). An
actor that dies mid-call (killed, out of memory, node lost) is replaced by a fresh one loaded with
the latest weights, and its shard is sampled again with the same seed: a retried step gets the
rollouts it would have got, and no other shard is redone.
`update_weights` puts the state dict into Ray's object store once; every actor loads it from there.
A LoRA (peft) state dict is merged into plain weights first, so actors hold plain models.

Departure from verl and OpenRLHF: weights travel through the object store, not an NCCL broadcast
from learner rank 0 into the inference engines; that works on CPU and across nodes without set-up,
at the cost of one copy through the driver per step (fine up to ~1B parameters).
Ray is imported only when a pool is made.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import replace
from pathlib import Path

import torch

from r1zero.distributed.digest import weight_digest
from r1zero.errors import UserError
from r1zero.rollout.base import SamplingParams
from r1zero.types import Rollout


def shard_prompts(n_prompts: int, shards: int) -> list[range]:
    """Contiguous prompt ranges, sizes differing by at most one; empty ones left out.

    >>> shard_prompts(5, 2), shard_prompts(1, 3)
    ([range(0, 3), range(3, 5)], [range(0, 1)])
    """
    base, extra = divmod(n_prompts, shards)
    bounds = [k * base + min(k, extra) for k in range(shards + 1)]
    return [range(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def shard_seed(seed: int | None, k: int) -> int | None:
    """Seed of shard k: the call's own seed for shard 0, a stable hash of (seed, k) for the others."""
    if seed is None or k == 0:
        return seed
    return int(hashlib.sha256(f"{seed}/{k}".encode()).hexdigest()[:15], 16)


class SamplerActor:
    """One Ray actor holding one backend sampler, made by the registry from the model folder."""

    def __init__(self, backend: str, model_dir: str, backend_options: dict, threads: int):
        from r1zero.models.io import load_tokenizer
        from r1zero.rollout import make_sampler

        torch.set_num_threads(threads)
        self.sampler = make_sampler(backend, None, load_tokenizer(model_dir), model_dir, backend_options)
        self.last_digest = ""

    def generate(self, prompt_ids: list[list[int]], n: int, params: SamplingParams) -> list[Rollout]:
        return self.sampler.generate(prompt_ids, n, params)

    def update_weights(self, state_dict: dict) -> None:
        self.sampler.update_weights(state_dict)
        self.last_digest = weight_digest(state_dict)

    def digest(self) -> str:
        """Of the weights the backend samples with, when it exposes its torch model; else of the last update."""
        model = getattr(self.sampler, "model", None)
        return weight_digest(model.state_dict()) if isinstance(model, torch.nn.Module) else self.last_digest

    def pid(self) -> int:
        import os

        return os.getpid()


class RaySamplerPool:
    """The Sampler protocol over `actors` Ray actors; a dead actor is replaced and its shard redone."""

    needs_ray = True  # the RL stage connects to a cluster before creating it

    def __init__(self, model_dir: str | Path, actors: int = 2, backend: str = "hf",
                 backend_options: dict | None = None, resources: dict | None = None, max_retries: int = 3,
                 lora_scale: float | None = None):
        import ray

        if not ray.is_initialized():
            raise UserError("sampler ray: no Ray cluster; the RL stage connects to one (rl.cluster.address)")
        if actors < 1:
            raise UserError(f"sampler ray: actors={actors}; expected >= 1")
        resources = dict(resources or {"num_cpus": 1})
        threads = max(1, int(resources.get("num_cpus", 1)))
        self.spawn_args = (backend, str(model_dir), dict(backend_options or {}), threads)
        self.actor_cls = ray.remote(SamplerActor).options(max_restarts=0, **resources)
        self.max_retries, self.restarts, self.weights, self.lora_scale = max_retries, 0, None, lora_scale
        self.actors = [self._spawn() for _ in range(actors)]
        ray.get([a.pid.remote() for a in self.actors])  # surfaces a backend that cannot start

    @classmethod
    def create(cls, model, tokenizer, model_dir, **options) -> RaySamplerPool:
        """The registry's constructor; `model` and `tokenizer` stay with the trainer (actors load their own)."""
        from r1zero.rollout.vllm import peft_lora_scale

        try:
            lora_scale = peft_lora_scale(model)
        except ValueError as e:
            raise UserError(f"sampler ray with lora: {e}") from None
        return cls(model_dir, **{"lora_scale": lora_scale, **options})

    def _spawn(self):
        actor = self.actor_cls.remote(*self.spawn_args)
        if self.weights is not None:
            actor.update_weights.remote(self.weights)  # runs before any later call on this actor
        return actor

    def _replace(self, k: int, error: Exception) -> None:
        import ray

        print(f"sampler ray: actor {k} died ({type(error).__name__}); starting a replacement with the latest weights")
        ray.kill(self.actors[k], no_restart=True)
        self.actors[k] = self._spawn()
        self.restarts += 1

    def generate(self, prompt_ids: list[list[int]], n: int, params: SamplingParams) -> list[Rollout]:
        import ray
        from ray.exceptions import RayActorError

        shards = shard_prompts(len(prompt_ids), len(self.actors))

        def submit(k: int):
            chunk = [prompt_ids[i] for i in shards[k]]
            return self.actors[k].generate.remote(chunk, n, replace(params, seed=shard_seed(params.seed, k)))

        refs = [submit(k) for k in range(len(shards))]
        out: list[list[Rollout]] = []
        for k in range(len(shards)):
            for attempt in range(self.max_retries + 1):
                try:
                    out.append(ray.get(refs[k]))
                    break
                except RayActorError as e:
                    if attempt == self.max_retries:
                        raise
                    self._replace(k, e)
                    refs[k] = submit(k)
        return [r for shard in out for r in shard]  # prompt-major, as the prompts came

    def update_weights(self, state_dict: dict) -> None:
        import ray
        from ray.exceptions import RayActorError

        from r1zero.rollout.vllm import merged_weights

        self.weights = ray.put(merged_weights(state_dict, self.lora_scale))
        refs = [a.update_weights.remote(self.weights) for a in self.actors]
        for k, ref in enumerate(refs):
            try:
                ray.get(ref)
            except RayActorError as e:
                self._replace(k, e)  # the replacement loads self.weights first

    def digests(self) -> dict[str, str]:
        import ray

        return {f"sampler{k}": d for k, d in enumerate(ray.get([a.digest.remote() for a in self.actors]))}

    def pids(self) -> list[int]:
        import ray

        return ray.get([a.pid.remote() for a in self.actors])

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []

