"""Samplers: token ids in -> completion ids, sampling log-probs and finish reasons out.

`SAMPLERS` maps a name to the "module:Class" that implements it; the class is imported only when
chosen, so a missing vLLM or Ray breaks nothing until asked for. `make_sampler` also takes
`module:Class` for a user's own sampler (as rewards take `module:function`). Every class has
`create(model, tokenizer, model_dir, **options)`: `hf` shares the trainer's model object; `vllm`
and `ray` load their own copies from `model_dir` and take the trainer's weights in `update_weights`.
"""

from __future__ import annotations

import importlib

from r1zero.errors import UserError
from r1zero.registry import Registry

SAMPLERS: Registry[str] = Registry("sampler")
SAMPLERS.register("hf")("r1zero.rollout.hf:HFSampler")
SAMPLERS.register("vllm")("r1zero.rollout.vllm:VLLMSampler")
SAMPLERS.register("ray")("r1zero.distributed.sampler_pool:RaySamplerPool")


def sampler_class(name: str) -> type:
    """The class behind a registered sampler name or a `module:Class` reference."""
    ref = name if ":" in name else SAMPLERS.get(name)
    module, attr = ref.split(":", 1)
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise UserError(f"sampler {name!r}: cannot import {ref} ({e}); is its extra installed "
                        f"(pip install 'r1zero[{name}]')?") from None


def make_sampler(name: str, model, tokenizer, model_dir, options: dict | None = None):
    """A sampler by name: `cls.create(model, tokenizer, model_dir, **options)`."""
    return sampler_class(name).create(model, tokenizer, model_dir, **(options or {}))
