"""Eval throughput (issue 6): items/s of `r1zero eval` at k=8, against a per-item HF `generate` loop.

    .venv/bin/python bench/bench_eval.py                       # random tiny model of the default shape
    .venv/bin/python bench/bench_eval.py --model runs/tiny-zero/pretrain/model --items 96

Both sides answer the same held-out arithmetic items with k samples each (T=0.6, top-p 0.95, stop at
`</answer>`). `r1zero eval` is the whole pipeline (`evaluate_model`: batched generation, greedy
answer off, math-verify scoring, voting, per-item records). The peer is what one writes first: one
`model.generate(num_return_sequences=k)` per item, no scoring at all. Printed: items/s of each and
the ratio; then `r1zero eval` with budget forcing (min 40 thinking tokens) for its cost.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import asdict
from pathlib import Path


def tiny_model(out: Path) -> Path:
    """A tiny model of the default build shape (the embedded recipe's), with random weights."""
    from r1zero.config import BuildConfig
    from r1zero.models.build import ModelShape, build_model

    return build_model(ModelShape(**asdict(BuildConfig())), out, seed=0)


def per_item_generate(model_dir: Path, opts, seed: int) -> float:
    """Items/s of one HF generate call per item (k sequences each), generation only."""
    import torch

    from r1zero.eval.evaluate import load_task_examples
    from r1zero.models.io import load_model, load_tokenizer

    model, tok = load_model(model_dir), load_tokenizer(model_dir)
    _, examples = load_task_examples(opts, seed)
    stop = [tok.eos_token_id, tok.convert_tokens_to_ids("</answer>")]
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    with torch.no_grad():
        for ex in examples:
            ids = tok(ex.prompt, return_tensors="pt", add_special_tokens=False)
            model.generate(**ids, do_sample=True, temperature=opts.temperature, top_p=opts.top_p,
                           max_new_tokens=opts.max_new_tokens, num_return_sequences=opts.samples,
                           eos_token_id=stop, pad_token_id=tok.pad_token_id)
    return len(examples) / (time.perf_counter() - t0)


def r1zero_eval(model_dir: Path, opts, seed: int) -> tuple[float, dict]:
    from r1zero.eval.evaluate import evaluate_model

    summary = evaluate_model(model_dir, opts, seed).summary
    return summary["items_per_s"], summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="", help="model folder (default: a random tiny model of the default shape)")
    ap.add_argument("--items", type=int, default=64)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0 = torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch

    from r1zero.eval.evaluate import EvalOptions

    if args.threads:
        torch.set_num_threads(args.threads)
    model = Path(args.model) if args.model else tiny_model(Path(tempfile.mkdtemp()) / "tiny")
    opts = EvalOptions(problems=args.items, samples=args.samples, max_new_tokens=args.max_new_tokens,
                       batch_size=args.batch_size, greedy=False, progress=False)
    r1zero_eval(model, EvalOptions(**{**asdict(opts), "problems": 4}), args.seed)  # warm-up: imports, caches
    ours, summary = r1zero_eval(model, opts, args.seed)
    peer = per_item_generate(model, opts, args.seed)
    forced, forced_summary = r1zero_eval(model, EvalOptions(**{**asdict(opts), "min_think_tokens": 40}), args.seed)
    print(f"model {model}, {args.items} items x k={args.samples}, max_new_tokens {args.max_new_tokens}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"mean completion length {summary['mean_length']:.1f} tokens, truncation {summary['truncation_rate']:.2f}")
    print("| run | items/s | sequences/s |\n|---|---:|---:|")
    for name, rate in (("r1zero eval (batched, scored)", ours), ("per-item HF generate (no scoring)", peer),
                       ("r1zero eval, budget forcing min 40", forced)):
        print(f"| {name} | {rate:.2f} | {rate * args.samples:.1f} |")
    print(f"ratio r1zero eval / per-item generate: {ours / peer:.1f}x")
    print(f"budget forcing: mean thinking {summary['mean_think_length']:.1f} -> "
          f"{forced_summary['mean_think_length']:.1f} tokens, cost {ours / forced:.1f}x")


if __name__ == "__main__":
    main()
