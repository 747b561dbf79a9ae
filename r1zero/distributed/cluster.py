"""The Ray cluster of a run: its options, connecting and disconnecting, and the weight check.

Used only when `sampler: ray` or `learners > 1`; nothing here imports Ray until then. A local
cluster (`address: local`, the default) is started for the run and shut down after it; `auto`
joins the cluster that `ray start` made on this machine; `ray://host:10001` is the Ray client.
Departure from verl: no resource-pool manager; each kind of actor asks Ray for its own resources
(`learner_resources` here, the sampler's `resources` in `sampler_options`) and Ray places them.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from r1zero.errors import UserError

STRATEGIES = ("ddp", "fsdp2")
MAX_TEMP_DIR_CHARS = 48  # Ray's socket paths under it must stay within the 107-byte AF_UNIX limit


@dataclass(frozen=True)
class ClusterOptions:
    """RLConfig.cluster, checked."""

    # local: start a Ray cluster for this run; auto: join the one `ray start` made; ray://host:port: client.
    address: str = "local"
    # Ray's session folder (local clusters); empty = <stage folder>/ray if that path is short, else /tmp/r1ray-*.
    temp_dir: str = ""
    # Logical CPUs of a local cluster (what Ray schedules by, not threads); 0 = the machine's cores, at least 8.
    num_cpus: int = 0
    # Data parallelism of learners > 1: "ddp" (every rank keeps the whole model; gradients are all-reduced)
    # or "fsdp2" (parameters, gradients and optimizer state sharded with torch's fully_shard; GPU).
    strategy: str = "ddp"
    # Ray resources of each learner rank, e.g. {num_cpus: 1, num_gpus: 1}; a rank with a GPU trains there and
    # uses NCCL. Asking for num_gpus puts even a single learner (learners: 1) into a Ray actor, on its GPU.
    learner_resources: dict = field(default_factory=lambda: {"num_cpus": 1})
    # Ray resources of each reward task (one task per reward function and step).
    reward_resources: dict = field(default_factory=lambda: {"num_cpus": 1})
    # After each step, hash the weights on every learner rank and sampler actor and log the hashes
    # (metrics `weights/<worker>`); differing hashes stop the run. Costs one pass over the weights.
    # Not with lora: learners hold adapters, sampler actors the merged weights.
    check_weights: bool = False

    @classmethod
    def parse(cls, raw: dict) -> ClusterOptions:
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(raw) - set(valid))
        if unknown:
            raise UserError(f"unknown cluster option(s) {', '.join(unknown)}; expected some of: {', '.join(valid)}")
        opts = cls(**raw)
        if opts.strategy not in STRATEGIES:
            raise UserError(f"cluster.strategy {opts.strategy!r}: expected one of {', '.join(STRATEGIES)}")
        if not (opts.address in ("local", "auto") or opts.address.startswith("ray://")):
            raise UserError(f"cluster.address {opts.address!r}: expected local, auto or ray://host:port")
        return opts


def connect(opts: ClusterOptions, stage_dir: Path) -> bool:
    """Start or join the Ray cluster; True when this call started it (so the run shuts it down)."""
    try:
        import ray
    except ImportError:
        raise UserError("sampler ray / learners > 1 need Ray: pip install 'r1zero[ray]'") from None
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # Workers import r1zero and user code (module:function rewards) as this process does.
    env = {"PYTHONPATH": os.pathsep.join(p for p in [os.getcwd(), *sys.path] if p),
           "TOKENIZERS_PARALLELISM": "false"}
    if opts.address != "local":
        ray.init(address=opts.address, runtime_env={"env_vars": env}, log_to_driver=False)
        return True
    temp_dir = opts.temp_dir or str(stage_dir.resolve() / "ray")
    if len(temp_dir) > MAX_TEMP_DIR_CHARS:
        temp_dir = tempfile.mkdtemp(prefix="r1ray-", dir="/tmp")
    Path(temp_dir).mkdir(parents=True, exist_ok=True)
    num_cpus = opts.num_cpus or max(os.cpu_count() or 1, 8)
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _temp_dir=str(Path(temp_dir).resolve()),
             runtime_env={"env_vars": env}, log_to_driver=False)
    return True


def disconnect() -> None:
    import ray

    ray.shutdown()


def check_weights(learner, sampler) -> dict[str, str]:
    """{"weights/<worker>": digest} over every learner rank and sampler actor; raises if they differ.

    A sampler without `digests` (hf) shares the learner's model object and is not listed.
    """
    digests = {**learner.digests(), **(sampler.digests() if hasattr(sampler, "digests") else {})}
    if len(set(digests.values())) > 1:
        raise RuntimeError(f"weights differ across workers after the update: {digests}")
    return {f"weights/{name}": d for name, d in digests.items()}
