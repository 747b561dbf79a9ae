"""Stage `eval`: one or several model folders on one task, side by side, written as a report.

The stage's input model (`model`, default the previous stage's output) comes first; `models` adds
more folders or earlier stage ids (base vs RL vs distilled), all evaluated on the same items with
the same seed. Writes, in the stage folder: eval.json (the first model's metrics at the top level,
as the demo report reads them, and every model's under `models`), per-item jsonl, report.md and
passk.png. See `evaluate.py` for what is measured and `inference.py` for budget forcing.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch

from r1zero.budget import StageMeter
from r1zero.errors import UserError
from r1zero.eval.evaluate import EvalOptions, ModelEval, evaluate_model, load_task_examples
from r1zero.eval.report import print_table, write_report
from r1zero.eval.workers import ChunkPool
from r1zero.stages import recorded_model

__all__ = ["evaluate_model", "evaluate_models", "print_table", "run_eval"]


def resolve_model(ref: str, run_dir: Path) -> Path:
    """An earlier stage id of this run (its done.json names its model) or a model folder."""
    done = run_dir / ref / "done.json"
    if "/" not in ref and done.is_file():
        model = recorded_model(run_dir, json.loads(done.read_text()))
        if model is None:
            raise UserError(f"eval.models: stage {ref!r} wrote no model")
        return model
    from r1zero.models.io import check_model_folder

    check_model_folder(ref)
    return Path(ref)


def evaluate_models(model_dirs: list[Path], opts: EvalOptions, seed: int) -> list[ModelEval]:
    """Every model on the same items; with `hard_problems`, also on the hard split, whose figures join
    each summary under `hard/` and whose items join the items file marked `"split": "hard"`."""
    task, examples = load_task_examples(opts, seed)
    if opts.hard_problems:  # before the main evaluation, so a task without digits fails at once
        hard = opts.hard()
        hard_task, hard_examples = load_task_examples(hard, seed)
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(ChunkPool(opts.processes, torch.get_num_threads())) if opts.processes > 1 else None
        evals = [evaluate_model(m, opts, seed, examples, task, pool) for m in model_dirs]
        if opts.hard_problems:
            for model_dir, ev in zip(model_dirs, evals):
                extra = evaluate_model(model_dir, hard, seed, hard_examples, hard_task, pool)
                ev.summary.update({f"hard/{k}": v for k, v in extra.summary.items()
                                   if v is None or isinstance(v, (int, float))})
                ev.items += [{**item, "split": "hard"} for item in extra.items]
    return evals


def settings_line(opts: EvalOptions, n_items: int) -> dict:
    out = {"task": opts.task, "split": opts.split, "items": n_items, "k": opts.samples,
           "temperature": opts.temperature, "top_p": opts.top_p, "max_new_tokens": opts.max_new_tokens,
           "template": opts.template}
    if opts.min_think_tokens or opts.max_think_tokens:
        out.update(min_think_tokens=opts.min_think_tokens, max_think_tokens=opts.max_think_tokens)
    if opts.max_answer_tokens:
        out.update(max_answer_tokens=opts.max_answer_tokens)
    if opts.verifier:
        out["verifier"] = opts.verifier
    return out


def count_eval_tokens(meter, evals: list[ModelEval], model_dirs: list[Path]) -> None:
    """Forward tokens of every sampled and greedy completion (prompt included), per model."""
    from r1zero.models.io import load_tokenizer

    for model_dir, ev in zip(model_dirs, evals):
        tok = load_tokenizer(model_dir)
        if model_dir != model_dirs[0]:
            from transformers import AutoConfig

            meter.set_model(AutoConfig.from_pretrained(str(model_dir)))
        lengths = []
        for item in ev.items:
            prompt = len(tok(item["prompt"], add_special_tokens=False)["input_ids"])
            lengths += [prompt + n for n in item.get("lengths", [])]
            if "greedy" in item:
                lengths.append(prompt + len(tok(item["greedy"]["text"], add_special_tokens=False)["input_ids"]))
        meter.add_sequences(lengths)


def run_eval(cfg, ctx) -> None:
    opts = EvalOptions.from_config(cfg, device=ctx.device)
    model_dirs = [ctx.model] + [resolve_model(str(ref), ctx.run_dir) for ref in getattr(cfg, "models", [])]
    meter = StageMeter.for_model_dir(ctx.model, stage=ctx.stage_id)
    with meter.phase("generation"):
        evals = evaluate_models(model_dirs, opts, ctx.seed)
    count_eval_tokens(meter, evals, model_dirs)
    results = [e.summary for e in evals]
    paths = write_report(results, [e.items for e in evals], ctx.stage_dir, settings_line(opts, results[0]["problems"]))
    print_table(results, f"eval: {opts.task} ({results[0]['problems']} items, {opts.samples} samples each, "
                         f"T={opts.temperature}, top-p={opts.top_p})")
    meter.write(ctx.stage_dir)
    print(f"saved {paths['eval']} and {paths['report']}")
