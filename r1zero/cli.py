"""The `r1zero` command.

    r1zero run RECIPE [key=value ...] [--resume | --overwrite]
    r1zero build|pretrain|eval [--model DIR] [--out RUN_DIR] [key=value ...]
    r1zero config [KIND]              documented fields of each stage

A user's mistake prints one line `r1zero: error: ...` and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path

from r1zero.errors import UserError

SINGLE_STAGES = ("build", "pretrain", "eval", "rl", "sft", "sample")
# Commands that live outside the core import path (serving, chat), added when present.
COMMAND_MODULES = [m for m in ("r1zero.serve.cli", "r1zero.budget.cli") if importlib.util.find_spec(m.rsplit(".", 1)[0])
                   and importlib.util.find_spec(m)]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="r1zero", description="Teach small language models to reason.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a recipe (a list of stages)")
    run.add_argument("recipe")
    run.add_argument("overrides", nargs="*", help="key=value, e.g. pretrain.steps=200")
    for cmd in (run, *[sub.add_parser(s, help=f"run the {s} stage alone") for s in SINGLE_STAGES]):
        cmd.add_argument("--resume", action="store_true", help="continue an existing run folder")
        cmd.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
        if cmd is not run:
            cmd.add_argument("--model", action="append", default=[],
                             help="input model folder or hub id (eval: repeat to compare several)")
            cmd.add_argument("--out", default="", help="run folder (default runs/<stage>)")
            cmd.add_argument("overrides", nargs="*", help="key=value for this stage, e.g. steps=200")
    eval_cmd = sub.choices["eval"]
    eval_cmd.add_argument("--task", help="task name, rg:<name>, hf:<dataset> or a data file")
    eval_cmd.add_argument("--samples", type=int, help="samples per item (k)")
    cfg = sub.add_parser("config", help="print the documented fields of each stage")
    cfg.add_argument("kind", nargs="?")
    for module in COMMAND_MODULES:
        # Each adds its subcommands with `set_defaults(func=...)`; func(args) -> exit status.
        importlib.import_module(module).add_commands(sub)
    return p


def single_stage_recipe(args) -> dict:
    kind = args.command
    out = Path(args.out) if args.out else Path("runs") / kind
    section = {"model": args.model[0]} if args.model else {}
    if len(args.model) > 1:
        section["models"] = args.model[1:]
    for flag in ("task", "samples"):
        if getattr(args, flag, None) is not None:
            section[flag] = getattr(args, flag)
    raw = {"name": out.name, "out_dir": str(out.parent), "stages": [kind], kind: section}
    return raw


def print_config(kind: str | None) -> None:
    from r1zero.config import describe
    from r1zero.stages import STAGES

    if kind and kind not in STAGES:
        raise UserError(f"unknown stage kind {kind!r}; expected one of {', '.join(STAGES.names())}")
    for name, cls in [(n, STAGES.get(n).config) for n in ([kind] if kind else STAGES.names())]:
        print(f"[{name}]")
        for field, meaning, default, source, bounds in describe(cls):
            where = f" in {bounds}" if bounds else ""
            print(f"  {field} = {default!r}{where}  # {meaning} ({source})")


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args, extra = p.parse_known_args(argv)  # overrides may also follow the flags
    if extra and (not hasattr(args, "overrides") or any(x.startswith("-") or "=" not in x for x in extra)):
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides += extra
    try:
        if getattr(args, "func", None):
            return args.func(args)
        from r1zero.pipeline import run_recipe
        from r1zero.recipe import load_recipe, resolve

        if args.command == "config":
            print_config(args.kind)
            return 0
        if args.command == "run":
            recipe = load_recipe(args.recipe, args.overrides)
        else:
            overrides = [o if "." in o.split("=", 1)[0] or o.split("=", 1)[0] in ("name", "seed", "threads", "device")
                         else f"{args.command}.{o}" for o in args.overrides]
            recipe = resolve(single_stage_recipe(args), overrides)
        run_recipe(recipe, resume=args.resume, overwrite=args.overwrite)
        return 0
    except UserError as e:
        print(f"r1zero: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("r1zero: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
