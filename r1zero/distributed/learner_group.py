"""The learner group: `learners` Ray actors, each a `LocalLearner` of rank r in one torch.distributed
group, behind the `LocalLearner` interface (step, policy_state, checkpoint_objects, final_model,
last_lr, digests, close), so the RL loop is the same on one process and on a cluster.

Rank 0 hosts the group's rendezvous; every rank loads the policy from the model folder itself and
gets the whole batch, taking its own rows (r1zero.train.learner). A checkpoint sees the group's
model, optimizer and scheduler as `RankState`s, gathered from and restored to the ranks.
Ray is imported only when a group is made.
"""

from __future__ import annotations

import socket

import torch

from r1zero.distributed.digest import weight_digest
from r1zero.train.learner import LocalLearner, setup_policy
from r1zero.train.rollout_batch import RolloutBatch


class LearnerRank:
    """One Ray actor: rank `rank` of the group, holding a LocalLearner once `join` has run."""

    def __init__(self, cfg, model_dir: str, seed: int, rank: int, world: int, strategy: str, threads: int):
        torch.set_num_threads(threads)
        self.args = (cfg, model_dir, seed, rank, world, strategy)
        self.learner: LocalLearner | None = None

    def address(self) -> tuple[str, int]:
        """This node's address and a free port, for rank 0 to host the group's rendezvous."""
        import ray

        with socket.socket() as s:
            s.bind(("", 0))
            return ray.util.get_node_ip_address(), s.getsockname()[1]

    def join(self, host: str, port: int) -> None:
        import torch.distributed as dist

        cfg, model_dir, seed, rank, world, strategy = self.args
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend, init_method=f"tcp://{host}:{port}", rank=rank, world_size=world)
        torch.manual_seed(seed)  # the same LoRA initialisation as a single-process run
        model = setup_policy(cfg, model_dir, "cuda" if torch.cuda.is_available() else "cpu")
        self.learner = LocalLearner(cfg, model, model_dir, rank, world, strategy, seed)

    def step(self, batch: RolloutBatch, step: int) -> dict:
        return self.learner.step(batch, step)

    def policy_state(self) -> dict | None:
        state = self.learner.policy_state()  # collective under fsdp2: every rank takes part
        return {k: v.cpu() for k, v in state.items()} if self.learner.rank == 0 else None

    def state_dict(self, name: str) -> dict | None:
        if name == "model":
            return self.policy_state()
        if name == "optimizer" and self.learner.strategy == "fsdp2" and self.learner.world > 1:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

            opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
            state = get_optimizer_state_dict(self.learner.model, self.learner.optimizer, options=opts)
            return state if self.learner.rank == 0 else None
        state = self.learner.checkpoint_objects()[name].state_dict()
        return state if self.learner.rank == 0 else None

    def load_state_dict(self, name: str, state: dict) -> None:
        learner = self.learner
        if learner.strategy == "fsdp2" and learner.world > 1 and name in ("model", "optimizer"):
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                set_model_state_dict,
                set_optimizer_state_dict,
            )

            opts = StateDictOptions(full_state_dict=True, broadcast_from_rank0=False)
            if name == "model":
                set_model_state_dict(learner.model, state, options=opts)
            else:
                set_optimizer_state_dict(learner.model, learner.optimizer, state, options=opts)
            return
        learner.checkpoint_objects()[name].load_state_dict(state)

    def last_lr(self) -> float:
        return self.learner.last_lr()

    def digest(self) -> str:
        state = self.learner.policy_state()
        return weight_digest(state) if self.learner.rank == 0 or self.learner.strategy == "ddp" else ""


class RayLearnerGroup:
    """`world` LearnerRank actors in one torch.distributed group; the LocalLearner interface."""

    def __init__(self, cfg, model, model_dir, seed: int, world: int, strategy: str, resources: dict):
        import ray

        threads = max(1, int(resources.get("num_cpus", 1)))
        actor = ray.remote(LearnerRank).options(max_restarts=0, **resources)
        self.model, self.strategy = model, strategy  # the driver's copy: final weights land here
        self.ranks = [actor.remote(cfg, str(model_dir), seed, r, world, strategy, threads) for r in range(world)]
        host, port = ray.get(self.ranks[0].address.remote())
        ray.get([r.join.remote(host, port) for r in self.ranks])

    def _all(self, method: str, *args) -> list:
        import ray

        return ray.get([getattr(r, method).remote(*args) for r in self.ranks])

    def step(self, batch: RolloutBatch, step: int = 0) -> dict:
        import ray

        return self._all("step", ray.put(batch), step)[0]  # every rank returns the same reduced metrics

    def policy_state(self) -> dict:
        return self._all("policy_state")[0]

    def checkpoint_objects(self) -> dict:
        return {name: RankState(self, name) for name in ("model", "optimizer", "scheduler")}

    def final_model(self):
        self.model.load_state_dict(self.policy_state())
        return self.model

    def last_lr(self) -> float:
        return self._all("last_lr")[0]

    def digests(self) -> dict[str, str]:
        digests = self._all("digest")
        return {f"learner{r}": d for r, d in enumerate(digests) if d}

    def close(self) -> None:
        import ray

        for rank in self.ranks:
            ray.kill(rank, no_restart=True)
        self.ranks = []


class RankState:
    """One named piece of the group's state (model, optimizer, scheduler) as a checkpoint sees it."""

    def __init__(self, group: RayLearnerGroup, name: str):
        self.group, self.name = group, name

    def state_dict(self) -> dict:
        return self.group._all("state_dict", self.name)[0]

    def load_state_dict(self, state: dict) -> None:
        self.group._all("load_state_dict", self.name, state)
