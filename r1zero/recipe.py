"""A recipe: stage ids in order plus one typed section per stage, from YAML and `key=value` overrides.

A section's `kind` (default: its id) picks the stage and therefore the dataclass that types it
(r1zero.stages), so a recipe can run the same kind twice (`eval_base`, `eval_rl`). Overrides are
dotted keys (`rl.lr=3e-5`) read as YAML. Mistakes (unknown key, wrong type, out of range, missing
path) raise `UserError` naming the key and what was expected; the CLI turns that into one line and
exit status 2.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from r1zero.config import BuildConfig, RLConfig, build_section, check_bounds, check_type, doc
from r1zero.errors import UserError
from r1zero.stages import STAGES


@dataclass
class Recipe:
    name: str = doc("run", "run name; the run folder is out_dir/name")
    seed: int = doc(0, "seed for everything", bounds='[0, inf)')
    out_dir: str = doc("runs", "where run folders go")
    threads: int = doc(0, "torch CPU threads; 0 = all cores", bounds='[0, inf)')
    device: str = doc("auto", "where every stage runs: auto (CUDA when present, else CPU), cpu, cuda or cuda:N")
    stages: list = doc([], "stage ids in order; each has a section (its `kind` defaults to its id)")
    sections: dict = doc({}, "stage id -> typed stage config (filled by resolve)")

    kinds: dict = doc({}, "stage id -> stage kind (filled by resolve)")

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in TOP_LEVEL}
        for sid, cfg in self.sections.items():
            out[sid] = {"kind": self.kinds[sid], **dataclasses.asdict(cfg)}
        return out


TOP_LEVEL = ("name", "seed", "out_dir", "threads", "device", "stages")


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


def resolve(raw: dict, overrides: list[str] = ()) -> Recipe:
    """A raw recipe dict + overrides -> a typed Recipe (raises UserError on any mistake)."""
    raw = dict(raw)
    for text in overrides:
        path, value = parse_override(text)
        stages = raw.get("stages") or []
        if len(path) > 1 and path[0] not in raw and path[0] not in stages:
            raise UserError(f"override {text!r}: the recipe has no section or stage {path[0]!r}; "
                            f"stages: {', '.join(map(str, stages))}")
        apply_override(raw, path, value)
    hints = typing.get_type_hints(Recipe)
    top = {k: check_type(k, raw[k], hints[k]) for k in TOP_LEVEL if k in raw}
    check_bounds("", Recipe, top)
    recipe = Recipe(**top)
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
    check_combinations(recipe)
    return recipe


def check_combinations(recipe: Recipe) -> None:
    """Values that are each in range but do not go together."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", recipe.device):
        raise UserError(f"device {recipe.device!r}: expected auto, cpu, cuda or cuda:N")
    for sid, cfg in recipe.sections.items():
        if getattr(cfg, "min_digits", 0) > getattr(cfg, "max_digits", 1 << 30):
            raise UserError(f"{sid}.min_digits {cfg.min_digits} > max_digits {cfg.max_digits}; "
                            "expected min_digits <= max_digits")
        if isinstance(cfg, BuildConfig) and cfg.experts_per_token > cfg.experts:
            raise UserError(f"{sid}.experts_per_token {cfg.experts_per_token} > experts {cfg.experts}; "
                            "expected at most as many as there are experts")
        if isinstance(cfg, RLConfig):
            check_rl(sid, cfg)


def check_rl(sid: str, cfg: RLConfig) -> None:
    rows = cfg.prompts_per_step * cfg.group_size // (cfg.minibatches * cfg.grad_accum)
    if rows < cfg.learners:
        raise UserError(f"{sid}: a micro-batch of {rows} rows (prompts_per_step x group_size / (minibatches x "
                        f"grad_accum)) cannot be split over {cfg.learners} learners; expected at least one row each")
    backend = cfg.sampler_options.get("backend", "hf") if cfg.sampler == "ray" else cfg.sampler
    if backend == "vllm" and (cfg.top_p < 1 or cfg.top_k > 0):
        # vLLM reports log-probs of the truncated, renormalised distribution; the trainer's are over the
        # full one, so every ratio would start below 1 and clipping would act on the first update.
        raise UserError(f"{sid}: the vllm sampler with top_p < 1 or top_k > 0 reports log-probs the trainer does "
                        "not reproduce; expected top_p=1 and top_k=0 for RL with vllm")


DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


def check_paths(recipe: Recipe) -> None:
    """A stage's `model` is empty, an earlier stage id, or an existing model folder; a data file exists."""
    from r1zero.models.io import check_model_folder, check_weights_readable

    for sid, section in recipe.sections.items():
        ref = getattr(section, "model", "")
        earlier = recipe.stages[: recipe.stages.index(sid)] if sid in recipe.stages else []
        if ref and ref not in earlier:
            try:
                check_model_folder(ref)
                check_weights_readable(ref)
            except UserError as e:
                raise UserError(f"{sid}.model: {e}") from None
        for key in ("task", "data"):
            value = getattr(section, key, "")
            if isinstance(value, str) and value.endswith(DATA_SUFFIXES) and not Path(value).is_file():
                raise UserError(f"{sid}.{key}: data file {value!r} not found; expected a path to a "
                                f"{'/'.join(DATA_SUFFIXES)} file or a task name")
            if isinstance(value, str) and value.endswith(DATA_SUFFIXES):
                from r1zero.tasks.loaders import check_utf8

                try:
                    check_utf8(Path(value))
                except UserError as e:
                    raise UserError(f"{sid}.{key}: {e}") from None


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
