"""What each stage of a recipe will compute, in shapes: training micro-steps, forwards, generate calls.

Shapes come from the recipe and from the data where that is cheap: pretraining batch widths and
prompt lengths are measured by tokenizing a few real batches (the model folder's tokenizer, or the
one a `build` stage in the recipe will train, which is deterministic). What cannot be known before
running is an assumption, listed in `Workload.notes`:

- what a model writes after a question (`completions.py`: its corpus's, rl's worked form, under budget
  forcing) gives how many decode steps a generate call runs and over how many rows
  (`timing.decode_work`), and the widths of rl's length pieces. A model with no lineage from a corpus
  (a fresh build, a folder) runs every generate call to `max_new_tokens`;
- RL with dynamic sampling draws more rounds while groups have equal rewards; with a share z of
  such groups, whether a round runs follows a binomial and what it draws the expected shortfall
  (`expected_draws`); the update's pieces are costed at the full completion width;
- an SFT run with `epochs` has as many steps as its data makes; without reading it, `steps`.

Stages that compute on several processes say who computes what, and `plan.py` prices it: pretraining
with `processes` (`train_ranks`: which process takes each length bucket, by the stage's own
`split_pieces`), an evaluation's chunks shared by `processes` workers (`rounds`: each split's chunks,
handed out in order), and rl with `async_level` (`sampler_ahead`: the next step is sampled while this
one trains).
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

from r1zero.budget.completions import (
    MIN_DIGIT_SAMPLE,
    Forced,
    Written,
    corpus_written,
    forced_lengths,
    ramp,
    worked_form,
)

# Groups whose G rewards are all equal: measured 0.36-0.57 (mean over 60-200 steps) in five runs of the
# demo's and tiny-tools' RL from their bases (sampled pass@1 ~0.5 at the start, 0.7-0.85 over the run);
# 0.06-0.12 on an older, weaker base. `r1zero plan --zero-variance-share` sets another.
ZERO_VARIANCE_SHARE = 0.4


class Call(NamedTuple):
    """One generate call: rows, prompt width, max new tokens, and the rows' completion lengths where they
    are the call's own (budget forcing's thinking and answer; () = the round's)."""

    rows: int
    width: int
    new: int
    lengths: tuple[int, ...] = ()


@dataclass
class Workload:
    """One stage's compute. Lists hold (count, seqs, width) or (count, seqs, prompt, new) shapes."""

    stage: str
    kind: str
    config: object  # transformers config of the stage's model
    train: list[tuple[int, int, int]] = field(default_factory=list)  # fwd+bwd micro-steps
    forward: list[tuple[int, int, int]] = field(default_factory=list)  # no-grad forwards (reference)
    generate: list[tuple[int, int, int, int]] = field(default_factory=list)  # generate calls
    train_tokens: float = 0.0  # real tokens trained on
    train_seq_len: float = 0.0  # their mean sequence length
    completions: int = 0  # generations scored by rewards / verifiers
    working_answers: int = 0  # of them, budget-forced answers that carry working (slower to verify)
    verified: int = 0  # of them, scored by the `math` reward (math-verify) in rl and sample
    completion_lengths: list[int] = field(default_factory=list)  # expected tokens per completion; [] = max
    lora_rank: int = 0
    gradient_checkpointing: bool = False
    reference: bool = False  # a frozen reference model is held
    critic: bool = False  # a value model of the policy's size is trained alongside (PPO's `gae`)
    steps: int = 0  # training steps (pretrain, rl, sft)
    optimizer_steps: int = 0  # AdamW steps (clip, step, zero), one per minibatch, not per micro-step
    documents: int = 0  # pretraining documents written, tokenized and sorted by length (the step's data)
    processes: int = 1  # processes computing side by side, one core each
    train_ranks: list[int] = field(default_factory=list)  # pretrain: the process of each `train` entry (0 = trainer)
    # eval, sample: one list per evaluation, in turn (per model, then the hard split), of its chunks in
    # order, each the calls one worker makes (sampled, then greedy); `generate` sums them up.
    rounds: list[list[list[Call]]] = field(default_factory=list)
    round_lengths: list[list[int]] = field(default_factory=list)  # per round, its completion lengths ([]: the stage's)
    sampler_ahead: bool = False  # rl async_level >= 1: a worker samples step t+1 while the learner trains t
    notes: list[str] = field(default_factory=list)

    def trainable_params(self, counts) -> int:
        if not self.train:
            return 0
        return counts.lora_params(self.lora_rank) if self.lora_rank else counts.params

    def mean_new(self, new: int, lengths: list[int] | tuple[int, ...] = ()) -> float:
        """Expected tokens a completion of at most `new` tokens has, of `lengths` (default: the stage's)."""
        lengths = lengths or self.completion_lengths
        return sum(min(n, new) for n in lengths) / len(lengths) if lengths else new

    def generated(self) -> list[tuple[int, int, int, float]]:
        """(count, rows, prompt width, expected new tokens) of the generate calls, each of its own lengths."""
        if not self.rounds:
            return [(c, s, p, self.mean_new(n)) for c, s, p, n in self.generate]
        return [(1, call.rows, call.width, self.mean_new(call.new, call.lengths or lengths))
                for chunks, lengths in zip(self.rounds, self.round_lengths, strict=True)
                for calls in chunks for call in calls]

    def generated_tokens(self) -> float:
        return sum(c * s * (p + new) for c, s, p, new in self.generated())

    def model_flops(self) -> dict[str, float]:
        from r1zero.budget.flops import causal_context, model_counts

        counts = model_counts(self.config)
        out = {"train": counts.train_flops(self.train_tokens, causal_context(self.train_seq_len), self.lora_rank)
                        * (2 if self.critic else 1),  # the critic trains on the same tokens
               "generation": sum(counts.forward_flops(c * s * (p + new), causal_context(p + new))
                                 for c, s, p, new in self.generated()),
               "reference": sum(counts.forward_flops(c * s * w, causal_context(w)) for c, s, w in self.forward)}
        return {k: v for k, v in out.items() if v}


def expected_draws(zero_share: float, groups: int, max_rounds: int) -> list[tuple[float, int]]:
    """(probability that round r runs, prompts it draws) for each generate round of an RL step with
    dynamic sampling, each group informative with probability 1 - zero_share. Round 1 draws `groups`;
    a later round runs while fewer than `groups` were kept (binomial over the groups drawn so far) and
    draws what `r1zero.train.rl.prompts_to_draw` would for the expected number kept."""
    from math import ceil, comb

    p, out, drawn = 1.0 - zero_share, [], 0
    for _ in range(max_rounds):
        if not drawn:
            n, short = groups, 1.0
        else:
            kept = min(drawn * p, groups - 1)  # expected kept so far, short of a full batch
            n = groups if kept <= 0 else min(groups, ceil(1.25 * (groups - kept) * drawn / kept))
            short = sum(comb(drawn, k) * p**k * (1 - p) ** (drawn - k) for k in range(min(groups, drawn + 1)))
        out.append((short, n))
        drawn += n
    return out


# ---- inputs: model configs and tokenizers of a recipe's stages ---------------------------------

def build_config(build_cfg):
    """The transformers config a `build` stage will write, without training its tokenizer."""
    from r1zero.models.build import REASONING_TOKENS, ModelShape, model_config

    class Vocab:  # what model_config reads from a tokenizer
        eos_token_id, pad_token_id = 1, 0

        def __len__(self):
            return build_cfg.vocab_size + len(REASONING_TOKENS) + (4 if build_cfg.tool_tokens else 0)

    return model_config(ModelShape(**asdict(build_cfg)), Vocab())


def folder_config(path: str):
    from transformers import AutoConfig

    from r1zero.errors import UserError

    try:
        return AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the config of model {path!r} ({e}); expected a local model folder "
                        "or a hub id already in the cache") from None


def stage_inputs(recipe) -> dict[str, tuple[object, object]]:
    """stage id -> (config, tokenizer source) of the model the stage reads (build: the one it writes).
    A tokenizer source is a folder path or ("build", BuildConfig, seed)."""
    out, outputs, last = {}, {}, None
    for sid in recipe.stages:
        cfg, kind = recipe.sections[sid], recipe.kinds[sid]
        if kind == "build":
            model = (build_config(cfg), ("build", cfg, recipe.seed))
        else:
            ref = getattr(cfg, "model", None)
            if ref is None:
                out[sid] = last
                continue
            model = outputs.get(ref) if ref else last
            if ref and ref not in outputs:
                model = (folder_config(ref), ref)
        out[sid] = model
        if kind in ("build", "pretrain", "rl", "sft") and model is not None:
            outputs[sid] = last = model
    return out


def load_tokenizer_from(source):
    if isinstance(source, tuple):
        from r1zero.models.build import train_tokenizer

        _, build_cfg, seed = source
        return train_tokenizer(build_cfg.vocab_size, seed, build_cfg.tool_tokens)
    from r1zero.models.io import load_tokenizer

    return load_tokenizer(source)


def rendered_lengths(tokenizer, examples, template: str) -> list[int]:
    """Token counts of the examples' prompts rendered with `template`."""
    from r1zero import tasks

    return [len(tokenizer(tasks.render_prompt(e, template, tokenizer), add_special_tokens=False)["input_ids"])
            for e in examples]


def train_prompt_lengths(tokenizer, task_spec: str, options: dict, template: str, n: int, seed: int) -> list[int]:
    """Token counts of `n` training prompts drawn as the RL and sample stages draw them."""
    from r1zero import tasks

    task, rng = tasks.get(task_spec, **options), random.Random(seed)
    return rendered_lengths(tokenizer, [task.sample(rng, split="train") for _ in range(n)], template)


# ---- one builder per stage kind ----------------------------------------------------------------

def pretrain_workload(w: Workload, cfg, tokenizer, seed: int) -> None:
    from r1zero.train.corpus import corpus_batch, length_buckets, lm_batch
    from r1zero.train.data_parallel import split_pieces

    picks = sorted({1, max(1, cfg.steps // 3), max(1, 2 * cfg.steps // 3), cfg.steps})
    batches = [lm_batch(tokenizer, corpus_batch(cfg, seed, s)) for s in picks]
    real = sum(int(b["attention_mask"].sum()) for b in batches) / len(batches)
    # One train shape per length bucket (rows, the widest that bucket got over the picked steps).
    pieces = [list(length_buckets(b, cfg.length_buckets)) for b in batches]
    buckets = [[m["input_ids"].shape for m in step] for step in pieces]
    w.train = [(cfg.steps, shapes[0], max(shapes_of_step[i][1] for shapes_of_step in buckets))
               for i, shapes in enumerate(buckets[0])]
    w.train_tokens, w.train_seq_len = cfg.steps * real, real / cfg.batch_size
    w.steps = w.optimizer_steps = cfg.steps
    w.documents = cfg.steps * cfg.batch_size
    if cfg.processes > 1:  # each bucket to the process that took it in most of the picked steps
        runs = [[r for r, run in enumerate(split_pieces(step, cfg.processes)) for _ in run] for step in pieces]
        w.processes = cfg.processes
        w.train_ranks = [statistics.mode(ranks[i] for ranks in runs) for i in range(len(w.train))]


def piece_widths(lengths: list[int], rows: int, pieces: int, cap: int, draws: int = 8) -> list[float]:
    """Expected completion width of each of `pieces` length pieces (shortest first) of `rows` rows whose
    lengths are drawn from `lengths`, each piece cut to its longest row (at most `cap`; [] = all `cap`).

    >>> piece_widths([], 8, 2, 32), piece_widths([4, 10], 4, 2, 8, draws=1) in ([4, 8], [8, 8], [4, 4])
    ([32, 32], True)
    """
    if not lengths:
        return [cap] * pieces
    rng, sums = random.Random(f"pieces-{rows}-{pieces}"), [0.0] * pieces
    for _ in range(draws):
        drawn = sorted(min(rng.choice(lengths), cap) for _ in range(rows))
        for i, chunk in enumerate(torch_chunks(drawn, pieces)):
            sums[i] += max(chunk)
    return [x / draws for x in sums]


def torch_chunks(items: list, n: int) -> list[list]:
    """`torch.chunk`'s split of `items` into at most n pieces of ceil(len / n)."""
    size = math.ceil(len(items) / n)
    return [items[i: i + size] for i in range(0, len(items), size)]


def rl_workload(w: Workload, cfg, tokenizer, seed: int, zero_share: float) -> None:
    from r1zero.algo import ADVANTAGES, loss_config
    from r1zero.rollout import sampler_class

    B, G, T = cfg.prompts_per_step, cfg.group_size, cfg.max_new_tokens
    lengths = train_prompt_lengths(tokenizer, cfg.task, cfg.task_options, cfg.template, 4 * B, seed)
    P, mean_p = max(lengths), sum(lengths) / len(lengths)
    draws = expected_draws(zero_share, B, 1 + cfg.max_resample) if cfg.dynamic_sampling else [(1.0, B)]
    w.generate = [(round(cfg.steps * runs), n * G, P, T) for runs, n in draws if round(cfg.steps * runs)]
    rounds = sum(runs for runs, _ in draws)
    beta = loss_config(cfg.loss, **cfg.loss_options).beta
    w.critic = hasattr(ADVANTAGES.get(cfg.advantage), "token_advantages")
    # The update leaves out rows with advantage 0 (`skip_zero_advantage`): the groups with equal rewards, which
    # dynamic sampling already keeps out of the batch.
    skipped = zero_share if cfg.skip_zero_advantage and not cfg.dynamic_sampling and beta == 0 and not w.critic else 0
    micro = cfg.minibatches * cfg.grad_accum
    rows = math.ceil(B * G * (1 - skipped) / micro)
    pieces = len(torch_chunks(list(range(rows)), min(cfg.length_buckets, rows)))
    widths = piece_widths(w.completion_lengths, rows, pieces, T)
    w.train = [(cfg.steps * cfg.num_iterations * micro, math.ceil(rows / pieces), round(P + width))
               for width in widths]
    w.steps, w.optimizer_steps = cfg.steps, cfg.steps * cfg.num_iterations * cfg.minibatches
    new = w.mean_new(T)
    w.train_tokens = cfg.steps * cfg.num_iterations * B * G * (1 - skipped) * (mean_p + new)
    w.train_seq_len = mean_p + new
    w.completions = round(cfg.steps * sum(runs * n for runs, n in draws) * G)
    w.verified = w.completions if "math" in cfg.rewards else 0
    w.lora_rank = cfg.lora_rank if cfg.lora else 0
    w.gradient_checkpointing = cfg.gradient_checkpointing
    w.reference = beta > 0 and not cfg.lora
    if beta > 0:
        w.forward = list(w.train)
    # A critic (an estimator with per-token advantages) costs a second model: a no-grad forward for the old
    # values and a training micro-step per piece, at the policy's shapes (its trunk is the policy's copy).
    if w.critic:
        w.forward += list(w.train)
        w.train += list(w.train)
        w.optimizer_steps *= 2  # its own AdamW, stepped with the policy's
        w.notes.append(f"advantage {cfg.advantage}: a critic of the policy's size, trained alongside it")
    if skipped:
        w.notes.append(f"the update leaves out the rows of groups with equal rewards, assuming {zero_share:.0%} "
                       "of groups")
    if cfg.dynamic_sampling:
        w.notes.append(f"dynamic sampling: {rounds:.2f} generate rounds per step, assuming {zero_share:.0%} "
                       "of groups have equal rewards")
    if cfg.async_level and not getattr(sampler_class(cfg.sampler), "needs_ray", False):
        w.sampler_ahead, w.processes = True, 2  # r1zero.train.rl.make_rollouts: a worker process samples
        w.notes.append(f"async_level {cfg.async_level}: a worker process samples while the learner trains; "
                       "generation counts only where it is the slower side")


def chunk_calls(chunks: list[tuple[int, int]], k: int, new: int, greedy: bool, think: int = 0,
                forced: Forced | None = None, answer_cap: int = 0) -> list[list[Call]]:
    """Each chunk of (items, padded prompt width)'s generate calls: k samples per item, then (`greedy`)
    one greedy answer per item, as `r1zero.eval.workers.chunk_generate` makes them. With budget forcing
    (`think`: max_think_tokens, `inference.budget_forced_generate`) each is two calls: the thinking, at
    most `think` tokens, then the answer after `</think><answer>` (2 tokens), over every row (one that
    stopped thinking early answers too), of the `forced` lengths (`forced_lengths`), at most `answer_cap`
    tokens where that is set (`max_answer_tokens`)."""
    forced = forced or Forced()

    def calls(rows: int, width: int) -> list[Call]:
        if not think:
            return [Call(rows, width, new)]
        return [Call(rows, width, min(think, new), forced.thinking),
                Call(rows, width + think + 2, min(new, answer_cap or new), forced.answering)]

    return [calls(n * k, width) + (calls(n, width) if greedy else []) for n, width in chunks]


def add_rounds(w: Workload, rounds: list[list[list[Call]]], completions: int, lengths: list[int] | None = None) -> None:
    """Generations in `rounds` (see Workload.rounds) of completions of `lengths` (None: the stage's), counted
    into `generate` and `completions`."""
    w.rounds += rounds
    w.round_lengths += [list(lengths or [])] * len(rounds)
    w.generate += [(1, *call[:3]) for chunks in rounds for calls in chunks for call in calls]
    w.completions += completions


def eval_split(opts, tokenizer, seed: int, written: list[Written] = ()) -> tuple[list[list[Call]], int, float]:
    """(the chunks' calls, completions, the share of them whose answer carries working) of one model that
    writes `written` on the items `opts` describe (`plan_chunks`)."""
    from r1zero.eval.evaluate import load_task_examples, plan_chunks

    _, examples = load_task_examples(opts, seed)
    lengths = rendered_lengths(tokenizer, examples, opts.template)
    chunks = [(len(c), max(lengths[i] for i in c)) for c in plan_chunks(lengths, opts)]
    forced = (forced_lengths(list(written), opts.max_think_tokens, opts.max_answer_tokens) if opts.max_think_tokens
              else Forced())
    calls = chunk_calls(chunks, opts.samples, opts.max_new_tokens, opts.greedy, opts.max_think_tokens, forced,
                        opts.max_answer_tokens)
    return calls, len(examples) * (opts.samples + (1 if opts.greedy else 0)), forced.working_share


def eval_workload(w: Workload, cfg, tokenizer, seed: int, written: list[Written],
                  hard_written: list[Written] | None = None) -> None:
    """The items, prompts and chunks the eval stage will use (its own `plan_chunks`), per model and split,
    in the order `r1zero.eval.stage.evaluate_models` runs them: every model on the items, writing `written`,
    then every model on the hard split, writing `hard_written` (what it writes on problems of its digits)."""
    from r1zero.eval.evaluate import EvalOptions

    opts = EvalOptions.from_config(cfg)
    models = 1 + len(getattr(cfg, "models", []) or [])
    splits = [(opts, None)] + ([(opts.hard(), hard_written)] if opts.hard_problems else [])
    for split, mine in splits:
        calls, completions, working = eval_split(split, tokenizer, seed, written if mine is None else mine)
        add_rounds(w, [calls] * models, completions * models, None if mine is None else [x.tokens for x in mine])
        w.working_answers += round(working * completions * models)
    w.processes = opts.processes
    if models > 1:  # side by side on the same items; assumed the same size as the first
        w.notes.append(f"{models} models evaluated, each assumed the size of the first")


def sample_workload(w: Workload, cfg, tokenizer, seed: int) -> None:
    lengths = train_prompt_lengths(tokenizer, cfg.task, cfg.task_options, cfg.template, min(cfg.prompts, 200), seed)
    per_chunk = max(1, 256 // cfg.samples)  # r1zero/sample.py: chunks of sampler.batch_size // k prompts
    full, rest = divmod(cfg.prompts, per_chunk)
    chunks = [(per_chunk, max(lengths))] * full + ([(rest, max(lengths))] if rest else [])
    add_rounds(w, [chunk_calls(chunks, cfg.samples, cfg.max_new_tokens, greedy=False)], cfg.prompts * cfg.samples)
    w.verified = w.completions if "math" in cfg.rewards else 0


def sft_workload(w: Workload, cfg) -> None:
    w.train = [(cfg.steps, cfg.batch_size, cfg.max_length)]
    w.steps = w.optimizer_steps = cfg.steps
    w.train_tokens, w.train_seq_len = cfg.steps * cfg.batch_size * cfg.max_length, cfg.max_length
    w.lora_rank = cfg.lora_rank if cfg.lora else 0
    w.notes.append("sft: rows assumed full (packing) and `steps` steps" + (" (epochs not read from the data)"
                                                                         if cfg.epochs else ""))


def stage_workload(sid: str, kind: str, cfg, config, tokenizer, seed: int,
                   zero_share: float = ZERO_VARIANCE_SHARE, written: list[Written] | None = None,
                   hard_written: list[Written] | None = None) -> Workload:
    """The Workload of one stage (`cfg` its typed section) on a model with `config` that writes `written`
    (None or []: unknown, every call runs to max_new_tokens), and `hard_written` on an eval's hard split
    (None: `written`)."""
    written = list(written or [])
    w = Workload(sid, kind, config, completion_lengths=[x.tokens for x in written])
    if config is None or kind in ("build", "report"):
        return w
    if kind == "pretrain":
        pretrain_workload(w, cfg, tokenizer, seed)
    elif kind == "rl":
        rl_workload(w, cfg, tokenizer, seed, zero_share)
    elif kind == "eval":
        eval_workload(w, cfg, tokenizer, seed, written, hard_written)
    elif kind == "sample":
        sample_workload(w, cfg, tokenizer, seed)
    elif kind == "sft":
        sft_workload(w, cfg)
    else:
        w.notes.append(f"stage kind {kind!r}: no estimate")
    return w


class RecipeInputs:
    """Each stage's model config and tokenizer (tokenizers loaded or trained once, on demand)."""

    def __init__(self, recipe):
        self.recipe, self.inputs, self._tokenizers = recipe, stage_inputs(recipe), {}
        self._written: dict[str, list[Written]] | None = None

    def written(self, sid: str, digits: tuple[int, int] | None = None) -> list[Written]:
        """What the model stage `sid` reads writes ([] = unknown: run to the limit), on problems with
        `digits` (min, max) digits if given and the corpus has such problems; an rl stage's own: `ramp`.

        A pretrain stage's model writes like its corpus; rl ends at its input model's `worked_form`; sft
        keeps its input model's, except an sft on an earlier `sample` stage's data, which writes like the
        sampled model; a build's model (untrained) and a folder have none."""
        if self._written is None:
            recipe, self._written, made, last = self.recipe, {}, {}, []
            for stage in recipe.stages:
                kind, cfg = recipe.kinds[stage], recipe.sections[stage]
                ref = getattr(cfg, "model", None)
                reads = [] if kind == "build" else last if not ref else made.get(ref, [])
                self._written[stage] = reads
                if kind == "pretrain":
                    reads = corpus_written(cfg, self.tokenizer(stage), recipe.seed)
                elif kind == "rl":
                    reads = worked_form(reads)
                    self._written[stage] = ramp(self._written[stage], reads)
                elif kind == "sft" and recipe.kinds.get(getattr(cfg, "data", "")) == "sample":
                    reads = self._written[cfg.data]
                if kind in ("build", "pretrain", "rl", "sft"):
                    made[stage] = last = reads
        written = self._written.get(sid, [])
        if not digits:
            return list(written)
        # each digit count as often (the arithmetic task draws them uniformly), those the corpus sample has
        # MIN_DIGIT_SAMPLE documents of (a handful is no distribution: one 123-token document stood for all)
        per_digit = [mine for d in range(digits[0], digits[1] + 1)
                     if len(mine := [w for w in written if w.digits == d]) >= MIN_DIGIT_SAMPLE]
        size = max(map(len, per_digit), default=0)
        return [mine[i % len(mine)] for mine in per_digit for i in range(size)] or list(written)

    def completion_lengths(self, sid: str, digits: tuple[int, int] | None = None) -> list[int]:
        """The tokens of each completion of `written(sid, digits)`."""
        return [w.tokens for w in self.written(sid, digits)]

    def config(self, sid: str):
        return (self.inputs.get(sid) or (None, None))[0]

    def tokenizer(self, sid: str):
        source = (self.inputs.get(sid) or (None, None))[1]
        if source is None or self.recipe.kinds[sid] in ("build", "report"):
            return None
        if str(source) not in self._tokenizers:
            self._tokenizers[str(source)] = load_tokenizer_from(source)
        return self._tokenizers[str(source)]

    def workload(self, sid: str, cfg=None, zero_share: float = ZERO_VARIANCE_SHARE) -> Workload:
        """Stage `sid`'s workload, with its section replaced by `cfg` if given."""
        cfg = cfg if cfg is not None else self.recipe.sections[sid]
        hard = (cfg.hard_min_digits, cfg.hard_max_digits) if getattr(cfg, "hard_problems", 0) else None
        options = getattr(cfg, "task_options", None) or {}
        # rl on the arithmetic task with its digits set: the corpus's lengths on problems of those digits
        digits = ((options["min_digits"], options["max_digits"]) if self.recipe.kinds[sid] == "rl"
                  and {"min_digits", "max_digits"} <= set(options) else None)
        return stage_workload(sid, self.recipe.kinds[sid], cfg, self.config(sid), self.tokenizer(sid),
                              self.recipe.seed, zero_share, self.written(sid, digits),
                              self.written(sid, hard) if hard else None)
