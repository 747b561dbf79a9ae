"""Typed recipe and stage configs: YAML + `key=value` overrides, checked field by field.

A recipe is a list of stage ids plus one section per stage. A section's `kind` (default: its id)
picks the stage and therefore the dataclass that types it, so a recipe can run the same kind twice
(`eval_base`, `eval_rl`). Every field is documented once, in its dataclass, with `doc(...)`.
Mistakes (unknown key, wrong type, missing path) raise `UserError` naming the key and what was
expected; the CLI turns that into one line and exit status 2.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from r1zero.errors import UserError


def doc(default: Any, meaning: str, source: str = "r1zero") -> Any:
    """A dataclass field with its documentation (meaning, default, source) attached."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"doc": meaning, "source": source})
    return field(default=default, metadata={"doc": meaning, "source": source})


@dataclass
class BuildConfig:
    arch: str = doc("deepseek_v3", "architecture: deepseek_v3 (MLA + MoE), qwen2 or llama", "DeepSeek-V3")
    vocab_size: int = doc(384, "BPE vocabulary size before the reasoning tags are added")
    hidden_size: int = doc(128, "model width")
    layers: int = doc(4, "decoder layers")
    heads: int = doc(4, "attention heads")
    intermediate_size: int = doc(384, "FFN width of dense layers (the first layer in deepseek_v3)")
    experts: int = doc(4, "routed experts per MoE layer (deepseek_v3)", "DeepSeek-V3")
    experts_per_token: int = doc(2, "routed experts each token goes to", "DeepSeek-V3")
    shared_experts: int = doc(1, "always-on shared experts", "DeepSeekMoE")
    moe_intermediate_size: int = doc(96, "FFN width of each expert")
    kv_lora_rank: int = doc(32, "MLA: width of the compressed KV latent that is cached", "DeepSeek-V2")
    max_position_embeddings: int = doc(256, "longest sequence the model is built for")


@dataclass
class PretrainConfig:
    model: str = doc("", "input model folder; empty = the previous stage's output")
    steps: int = doc(1200, "optimizer steps")
    batch_size: int = doc(32, "documents per step (at equal tokens, more smaller steps learned faster: "
                              "32x1800 > 64x900 > 128x450)")
    length_buckets: int = doc(3, "micro-batches per step, documents sorted by length so each pads less (same gradient)")
    lr: float = doc(3e-3, "peak AdamW learning rate")
    min_lr_ratio: float = doc(0.1, "cosine decay floor as a share of lr")
    warmup_steps: int = doc(40, "linear warmup steps")
    weight_decay: float = doc(0.01, "AdamW weight decay")
    grad_clip: float = doc(1.0, "max gradient norm")
    min_digits: int = doc(2, "smallest problems (digits of the larger operand)")
    max_digits: int = doc(3, "largest problems")
    ops: str = doc("+-*", "operations in the corpus")
    direct_share: float = doc(0.15, "share of documents answered directly, with an empty <think>")
    slip_share: float = doc(0.15, "share of worked solutions carrying one consistent slip")
    loss_on_prompt: bool = doc(True, "also train on the problem text (its random digits are noise to predict)")
    bias_update_gamma: float = doc(
        1e-3, "MoE auxiliary-loss-free balancing: step size of each expert's routing bias; 0 = off",
        "DeepSeek-V3 sec. 2.1.2")
    held_out: int = doc(200, "held-out evaluation problems that training never sees")
    checkpoint_every: int = doc(100, "steps between checkpoints; 0 = only at the end")
    keep_checkpoints: int = doc(2, "checkpoints kept on disk")
    log_every: int = doc(10, "steps between metrics.jsonl lines")


@dataclass
class EvalConfig:
    model: str = doc("", "model folder to evaluate; empty = the previous stage's output")
    models: list = doc([], "more model folders or earlier stage ids, evaluated side by side")
    task: str = doc("arithmetic", "task name or data file (see r1zero.tasks)")
    task_options: dict = doc({}, "options for the task, e.g. {data_dir: ...}")
    split: str = doc("test", "task split to evaluate")
    template: str = doc("plain", "prompt template: r1_zero, chat or plain", "DeepSeek-R1 (r1_zero)")
    problems: int = doc(200, "items; 0 = the whole split of a dataset task")
    samples: int = doc(8, "samples per item (k) for pass@1, pass@k and cons@k")
    temperature: float = doc(0.6, "sampling temperature", "DeepSeek-R1")
    top_p: float = doc(0.95, "nucleus sampling", "DeepSeek-R1")
    top_k: int = doc(0, "top-k sampling; 0 = off")
    max_new_tokens: int = doc(80, "completion length limit (a worked 3-digit product is ~70 tokens)")
    batch_size: int = doc(256, "sequences generated together")
    max_batch_tokens: int = doc(65536, "padded tokens per generate call (sequences x (prompt + new tokens))")
    reward: str = doc("", "reward that scores correctness; empty = the task's first default reward")
    verifier: str = doc("", "rewards (comma-separated, summed) choosing best-of-n without the gold answer")
    greedy: bool = doc(True, "also one greedy answer per item (greedy_pass@1)")
    min_think_tokens: int = doc(0, "budget forcing: append wait_text when thinking ends earlier", "s1")
    max_think_tokens: int = doc(0, "budget forcing: close thinking and force the answer here; 0 = no limit", "s1")
    wait_text: str = doc("Wait", "text appended when thinking ends too early", "s1")
    min_digits: int = doc(2, "arithmetic: smallest held-out problems")
    max_digits: int = doc(3, "arithmetic: largest held-out problems")
    ops: str = doc("+-*", "arithmetic: operations")


@dataclass
class RLConfig:
    model: str = doc("", "policy model folder or hub id; empty = the previous stage's output")
    task: str = doc("arithmetic", "task name, rg:<name>, hf:<dataset> or a data file (r1zero.tasks)")
    task_options: dict = doc({}, "options for the task, e.g. {min_digits: 2, max_digits: 3}")
    template: str = doc("plain", "prompt template: r1_zero, chat or plain", "DeepSeek-R1 (r1_zero)")
    rewards: dict = doc({"numeric": 1.0, "format": 0.1}, "reward name -> weight; empty = the task's defaults")
    accuracy_reward: str = doc("", "reward whose score 1 counts as correct; empty = the first in `rewards`")
    reward_timeout_s: float = doc(30.0, "time budget of one reward call; past it the sample scores 0")
    held_out: int = doc(200, "generated tasks: the first N test problems (what eval uses) are never trained on")
    steps: int = doc(300, "RL steps (one rollout batch and its updates each)")
    prompts_per_step: int = doc(16, "B: prompts per step")
    group_size: int = doc(8, "G: completions per prompt", "GRPO")
    max_new_tokens: int = doc(80, "completion length limit (a worked 3-digit product is ~70 tokens)")
    temperature: float = doc(1.0, "sampling temperature during RL")
    top_p: float = doc(1.0, "nucleus sampling during RL")
    top_k: int = doc(0, "top-k sampling during RL; 0 = off")
    stop: list = doc(["</answer>"], "generation stops after these (one-token) strings")
    advantage: str = doc("grpo", "advantage estimator: grpo, dr_grpo, rloo, reinforce_pp")
    loss: str = doc("dapo", "policy loss variant: grpo, dapo, dr_grpo, gspo")
    loss_options: dict = doc({}, "overrides of the loss variant: eps_low, eps_high, aggregation, beta, ...")
    num_iterations: int = doc(1, "epochs over each rollout batch (mu); ratios differ from 1 from the second on",
                              "GRPO")
    minibatches: int = doc(1, "optimizer steps per epoch (the batch is split into this many)")
    grad_accum: int = doc(1, "gradient accumulation micro-steps per minibatch")
    length_buckets: int = doc(4, "pieces per micro-step, rows sorted by completion length so each pads less "
                                 "(the same gradient: each piece's loss is weighted by its share)")
    lr: float = doc(5e-5, "AdamW learning rate (3e-4 collapsed a ~1M model in trials)")
    lr_schedule: str = doc("constant", "constant or cosine (to 10%), after warmup")
    warmup_steps: int = doc(0, "linear warmup steps")
    weight_decay: float = doc(0.0, "AdamW weight decay")
    grad_clip: float = doc(1.0, "max gradient norm")
    dynamic_sampling: bool = doc(True, "drop groups whose rewards are all equal and draw more prompts", "DAPO")
    max_resample: int = doc(3, "dynamic sampling: extra generation rounds per step at most", "DAPO")
    overlong_filter: bool = doc(False, "mask truncated completions out of the loss", "DAPO")
    lora: bool = doc(False, "train LoRA adapters (peft) instead of all weights")
    lora_rank: int = doc(16, "LoRA rank")
    lora_alpha: int = doc(32, "LoRA alpha")
    gradient_checkpointing: bool = doc(False, "recompute activations in backward to save memory")
    checkpoint_every: int = doc(50, "steps between checkpoints; 0 = only at the end")
    keep_checkpoints: int = doc(2, "checkpoints kept on disk")
    log_samples: int = doc(2, "completions per step written to samples.jsonl")
    sampler: str = doc("hf", "rollout backend: hf (in this process, shares the model), vllm, ray (a pool of "
                             "hf or vllm actors) or module:Class (r1zero.rollout.SAMPLERS)")
    sampler_options: dict = doc({}, "options of the sampler's create, e.g. ray: {actors: 2, backend: hf, "
                                    "backend_options: {}, resources: {num_cpus: 1, num_gpus: 0}}")
    learners: int = doc(1, "trainer ranks: 1 = in this process; N > 1 = N Ray actors in one torch.distributed "
                           "group (gloo on CPU, NCCL on GPU) averaging gradients", "verl")
    cluster: dict = doc({}, "Ray, when sampler is ray or learners > 1: address (local | auto | ray://host:port), "
                            "temp_dir, num_cpus, strategy (ddp | fsdp2), learner_resources, reward_resources, "
                            "check_weights (see r1zero.train.cluster.ClusterOptions)")
    tis_cap: float = doc(0.0, "truncated importance sampling: old log-probs from a trainer forward pass, each "
                              "token's loss weighted by min(pi_trainer / pi_sampler, tis_cap); 0 = off",
                         "Yao et al. 2025, TIS")


@dataclass
class SFTConfig:
    model: str = doc("", "model folder to fine-tune; empty = the previous stage's output")
    data: str = doc("", "chat jsonl (`messages`) or prompt/completion jsonl; a stage id = that stage's dataset")
    steps: int = doc(200, "optimizer steps")
    epochs: int = doc(0, "if > 0, train this many passes over the data instead of `steps`")
    batch_size: int = doc(32, "sequences (or packed rows) per step")
    max_length: int = doc(256, "tokens per sequence or packed row")
    packing: bool = doc(True, "pack several examples into each row (attention kept within each example)")
    lr: float = doc(1e-3, "peak AdamW learning rate")
    warmup_steps: int = doc(10, "linear warmup steps")
    weight_decay: float = doc(0.0, "AdamW weight decay")
    grad_clip: float = doc(1.0, "max gradient norm")
    lora: bool = doc(False, "train LoRA adapters (peft) instead of all weights")
    lora_rank: int = doc(16, "LoRA rank")
    lora_alpha: int = doc(32, "LoRA alpha")
    held_out_share: float = doc(0.05, "share of the data kept out for the held-out loss")
    checkpoint_every: int = doc(100, "steps between checkpoints; 0 = only at the end")
    keep_checkpoints: int = doc(2, "checkpoints kept on disk")
    log_every: int = doc(10, "steps between metrics.jsonl lines")


@dataclass
class SampleConfig:
    model: str = doc("", "model that writes the traces; empty = the previous stage's output")
    task: str = doc("arithmetic", "task name or data file (r1zero.tasks)")
    task_options: dict = doc({}, "options for the task")
    template: str = doc("plain", "prompt template: r1_zero, chat or plain")
    rewards: dict = doc({}, "reward name -> weight; empty = the task's first default reward (its "
                            "correctness check); the format is the `format` filter's job")
    held_out: int = doc(200, "generated tasks: the first N test problems (what eval uses) are never sampled")
    prompts: int = doc(500, "prompts to sample from")
    samples: int = doc(4, "generations per prompt (k)")
    temperature: float = doc(1.0, "sampling temperature")
    top_p: float = doc(1.0, "nucleus sampling")
    max_new_tokens: int = doc(80, "completion length limit (a worked 3-digit product is ~70 tokens)")
    min_reward: float = doc(1.0, "keep a generation only if its total reward reaches this (verified)")
    filters: list = doc(["format", "repetition"], "extra filters: format, repetition, language, longest, reasoning")
    dedup: bool = doc(True, "drop duplicate (prompt, completion) pairs")
    max_per_prompt: int = doc(1, "kept generations per prompt at most")


@dataclass
class ReportConfig:
    evals: list = doc([], "eval stage ids to compare side by side; empty = every eval stage, in order")
    rl: str = doc("", "rl stage whose curves to plot; empty = the last rl stage")


@dataclass
class Recipe:
    name: str = doc("run", "run name; the run folder is out_dir/name")
    seed: int = doc(0, "seed for everything")
    out_dir: str = doc("runs", "where run folders go")
    threads: int = doc(0, "torch CPU threads; 0 = all cores")
    stages: list = doc([], "stage ids in order; each has a section (its `kind` defaults to its id)")
    sections: dict = doc({}, "stage id -> typed stage config (filled by resolve)")

    kinds: dict = doc({}, "stage id -> stage kind (filled by resolve)")

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("name", "seed", "out_dir", "threads", "stages")}
        for sid, cfg in self.sections.items():
            out[sid] = {"kind": self.kinds[sid], **dataclasses.asdict(cfg)}
        return out


TOP_LEVEL = ("name", "seed", "out_dir", "threads", "stages")


def parse_override(text: str) -> tuple[list[str], Any]:
    """`pretrain.steps=200` -> (["pretrain", "steps"], 200); the value is read as YAML."""
    if "=" not in text:
        raise UserError(f"override {text!r}: expected key=value, e.g. pretrain.steps=200")
    key, raw = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else ""


def apply_override(raw: dict, path: list[str], value: Any) -> None:
    node = raw
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UserError(f"override {'.'.join(path)}: {part!r} is not a section")
    node[path[-1]] = value


def check_type(key: str, value: Any, hint: Any) -> Any:
    """`value` if it fits `hint` (ints are accepted as floats), else a UserError naming `key`."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return check_type(key, value, option)
            except UserError:
                pass
        names = " or ".join(getattr(a, "__name__", str(a)) for a in typing.get_args(hint))
        raise UserError(f"{key}: expected {names}, got {value!r}")
    base = origin or hint
    if hint is type(None):
        ok = value is None
    elif base is float:
        if isinstance(value, str):  # YAML 1.1 reads `1e-3` (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        ok, value = True, str(value)  # `ops=+-` or `task=123` read as YAML numbers
    else:
        ok = isinstance(value, base)
    if not ok:
        raise UserError(f"{key}: expected {getattr(base, '__name__', base)}, got {value!r} "
                        f"({type(value).__name__})")
    return value


def build_section(stage_id: str, kind: str, cls: type, values: dict) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise UserError(f"unknown key {stage_id}.{key} for a {kind} stage; "
                            f"valid keys: {', '.join(sorted(known))}")
        kwargs[key] = check_type(f"{stage_id}.{key}", value, hints[key])
    return cls(**kwargs)


def resolve(raw: dict, overrides: list[str] = ()) -> Recipe:
    """A raw recipe dict + overrides -> a typed Recipe (raises UserError on any mistake)."""
    from r1zero.stages import STAGES

    raw = dict(raw)
    for text in overrides:
        path, value = parse_override(text)
        stages = raw.get("stages") or []
        if len(path) > 1 and path[0] not in raw and path[0] not in stages:
            raise UserError(f"override {text!r}: the recipe has no section or stage {path[0]!r}; "
                            f"stages: {', '.join(map(str, stages))}")
        apply_override(raw, path, value)
    hints = typing.get_type_hints(Recipe)
    recipe = Recipe(**{k: check_type(k, raw[k], hints[k]) for k in TOP_LEVEL if k in raw})
    if not recipe.stages:
        raise UserError("recipe has no stages; expected e.g. `stages: [build, pretrain, eval]`")
    for key, values in raw.items():
        if key in TOP_LEVEL:
            continue
        if not isinstance(values, dict):
            raise UserError(f"unknown top-level key {key!r}; expected one of {', '.join(TOP_LEVEL)} "
                            f"or a stage section ({', '.join(STAGES.names())})")
        values = dict(values)
        kind = values.pop("kind", key)
        if kind not in STAGES:
            raise UserError(f"section {key!r}: unknown stage kind {kind!r}; "
                            f"expected one of {', '.join(STAGES.names())} (or set `kind:`)")
        recipe.sections[key] = build_section(key, kind, STAGES.get(kind).config, values)
        recipe.kinds[key] = kind
    for sid in recipe.stages:
        if sid not in recipe.sections:
            if sid not in STAGES:
                raise UserError(f"stage {sid!r} has no section and is not a stage kind; "
                                f"expected one of {', '.join(STAGES.names())}")
            recipe.sections[sid], recipe.kinds[sid] = STAGES.get(sid).config(), sid
    check_paths(recipe)
    return recipe


DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


def check_paths(recipe: Recipe) -> None:
    """A stage's `model` is empty, an earlier stage id, or an existing model folder; a data file exists."""
    from r1zero.models.io import check_model_folder

    for sid, section in recipe.sections.items():
        ref = getattr(section, "model", "")
        earlier = recipe.stages[: recipe.stages.index(sid)] if sid in recipe.stages else []
        if ref and ref not in earlier:
            try:
                check_model_folder(ref)
            except UserError as e:
                raise UserError(f"{sid}.model: {e}") from None
        for key in ("task", "data"):
            value = getattr(section, key, "")
            if isinstance(value, str) and value.endswith(DATA_SUFFIXES) and not Path(value).is_file():
                raise UserError(f"{sid}.{key}: data file {value!r} not found; expected a path to a "
                                f"{'/'.join(DATA_SUFFIXES)} file or a task name")


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"recipe file {str(p)!r} not found; expected a YAML file such as recipes/tiny-zero.yaml")
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise UserError(f"recipe {p}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise UserError(f"recipe {p}: expected a mapping of keys to values at the top level")
    return resolve(raw, overrides)


def describe(cls: type) -> list[tuple[str, str, Any, str]]:
    """(name, meaning, default, source) for each field: the documentation the CLI prints."""
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        rows.append((f.name, f.metadata.get("doc", ""), default, f.metadata.get("source", "")))
    return rows
