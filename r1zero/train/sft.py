"""Stage `sft`: supervised fine-tuning with the loss on assistant tokens only (R1's cold start and
the distillation / rejection-sampling SFT rounds).

Data (jsonl, json, csv or parquet; `data` may also name an earlier `sample` stage of the run):
- raw `prompt` + `completion` strings: the prompt is kept as is and not trained; the completion and
  an eos are trained. This is how a `sample` stage writes what its model saw and said, and how the
  tiny model's plain prompts (`123+45=`) look, so a row that has both forms is read raw.
- `messages` ([{role, content}, ...]): rendered with the tokenizer's chat template; every assistant
  turn (its reply and end-of-turn token) is trained, system / user text and the template's own text
  (`Assistant: `) are not. Assistant spans are found by rendering each prefix of the conversation,
  so the template must render a prefix of a conversation as a prefix of its text.
Each segment is tokenized on its own, as at inference, where the prompt is encoded and the reply
generated token by token. The first token of an example is never a label (nothing in the example
predicts it), so no loss crosses from one packed example into the next.

Packing fills rows of `max_length` tokens with whole examples, in a seeded order. Attention stays
within each example: position ids restart at 0 per example and no 2-D attention mask is passed, and
transformers 5 then masks block-diagonally (`masking_utils.find_packed_sequence_indices`); a KV
cache turns that detection off, hence `use_cache=False` (with the default cache the packed logits
were off by 0.37). Measured on the tiny DeepSeek-V3, Qwen2 and Llama: logits of a packed row equal
those of each example alone to 3e-7 (tests/train/test_sft.py checks DeepSeek-V3 and Qwen2).

Full fine-tuning, or LoRA adapters (peft, every linear layer) merged into the saved model folder.
budget.json meters the training tokens and FLOPs (each packed example attends within itself).
AdamW with linear warmup and cosine decay to 10% of `lr`; the loss is the token mean over a batch's
assistant tokens; `held_out_share` of the examples is kept out and its loss logged.

Batches are a pure function of (seed, step): the examples are packed once into rows, and epoch e
visits the rows in a permutation seeded by (seed, e), so a resumed run sees exactly the batches of an
uninterrupted one (exact resume as in `pretrain`). Departures from R1, which fine-tunes V3-Base for
two epochs on ~800k samples: sizes are tiny, and MoE bias balancing is off during SFT.
"""

from __future__ import annotations

import functools
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from r1zero.budget import StageMeter
from r1zero.config import SFTConfig
from r1zero.errors import UserError
from r1zero.models.io import load_model, load_tokenizer, save_model_folder, with_lora
from r1zero.stages import StageContext
from r1zero.tasks.base import BadRow
from r1zero.tasks.loaders import FILE_SUFFIXES, read_records
from r1zero.train.logs import plot_curves
from r1zero.train.scaffold import TrainingRun, adamw, optimizer_step

ROLES = ("system", "user", "assistant", "tool")


@dataclass
class Tokenized:
    """One example as token ids, with the tokens that carry a label."""

    ids: list[int]  # (L,)
    trained: list[bool]  # (L,) True = assistant token, scored by the loss


@dataclass
class SFTBatch:
    input_ids: torch.Tensor  # (B, T)
    labels: torch.Tensor  # (B, T) the token itself on assistant tokens, -100 elsewhere
    position_ids: torch.Tensor  # (B, T) restarting at 0 at each packed example
    attention_mask: torch.Tensor | None  # (B, T) without packing; None with it (block-diagonal)


# ---- data ----------------------------------------------------------------------------------------


def resolve_data(ref: str, run_dir: Path) -> Path:
    """A data file, or an earlier `sample` stage id of this run (its data.jsonl)."""
    if not ref:
        raise UserError("sft.data is empty; expected a jsonl file or the id of an earlier sample stage")
    stage_data = run_dir / ref / "data.jsonl"
    if "/" not in ref and not ref.endswith(FILE_SUFFIXES):
        if stage_data.is_file():
            return stage_data
        raise UserError(f"sft.data: {ref!r} is not a data file, and {stage_data} does not exist "
                        "(an earlier sample stage of this run writes it)")
    if not Path(ref).is_file():
        raise UserError(f"sft.data: file {ref!r} not found; expected a {'/'.join(FILE_SUFFIXES)} file "
                        "of `messages` or `prompt`/`completion` rows")
    return Path(ref)


def check_messages(messages) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise BadRow("`messages` must be a non-empty list of {role, content} objects")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise BadRow(f"message {i} must be {{role: {'|'.join(ROLES)}, content: string}}, got {m!r}")
    if not any(m["role"] == "assistant" for m in messages):
        raise BadRow("no assistant message: nothing to train on")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def render(tokenizer, messages: list[dict], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def chat_segments(tokenizer, messages: list[dict]) -> list[tuple[str, bool]]:
    """(text, trained) pieces of a conversation rendered by the chat template; assistant replies
    (up to their end-of-turn token, without the newline the template puts after it) are trained."""
    if not getattr(tokenizer, "chat_template", None):
        raise UserError("the model's tokenizer has no chat template, so `messages` rows cannot be "
                        "rendered; give raw `prompt` and `completion` strings instead")
    segments, done = [], ""
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before, after = render(tokenizer, messages[:i], True), render(tokenizer, messages[: i + 1], False)
        if not (before.startswith(done) and after.startswith(before)):
            raise BadRow("the chat template does not render this conversation's prefixes as prefixes of "
                         "its text, so the assistant tokens cannot be found")
        reply = after[len(before):].rstrip()
        segments += [(before[len(done):], False), (reply, True)]
        done = before + reply
    full = render(tokenizer, messages, False)
    return segments + [(full[len(done):], False)]


def row_segments(row: dict, tokenizer) -> tuple[list[tuple[str, bool]], bool]:
    """(segments, append eos): raw prompt/completion rows first, else `messages`."""
    prompt, completion = row.get("prompt"), row.get("completion")
    if isinstance(prompt, str) and isinstance(completion, str):
        if not completion.strip():
            raise BadRow("empty `completion`: nothing to train on")
        return [(prompt, False), (completion, True)], True
    if "messages" in row:
        return chat_segments(tokenizer, check_messages(row["messages"])), False
    raise BadRow(f"expected `messages` (a list of {{role, content}}) or `prompt` and `completion` "
                 f"strings; got keys {sorted(row)}")


def tokenize_segments(tokenizer, segments: list[tuple[str, bool]], add_eos: bool) -> Tokenized:
    ids: list[int] = []
    trained: list[bool] = []
    for text, is_trained in segments:
        if text:
            piece = tokenizer(text, add_special_tokens=False)["input_ids"]
            ids += piece
            trained += [is_trained] * len(piece)
    if add_eos:
        ids.append(tokenizer.eos_token_id)
        trained.append(True)
    if trained:
        trained[0] = False  # nothing in the example predicts its first token
    return Tokenized(ids, trained)


def load_examples(path: Path, tokenizer, max_length: int) -> tuple[list[Tokenized], dict]:
    """Tokenized examples of a data file (a bad row is a UserError naming file and line), cut to
    `max_length`; examples with no trained token left are dropped and counted."""
    out, counts = [], {"rows": 0, "truncated": 0, "dropped_too_long": 0}
    for where, row in read_records(path):
        try:
            if isinstance(row, BadRow):
                raise row
            if not isinstance(row, dict):
                raise BadRow(f"expected an object, got {type(row).__name__}")
            example = tokenize_segments(tokenizer, *row_segments(row, tokenizer))
        except BadRow as e:
            raise UserError(f"{path}: {where}: {e}") from None
        counts["rows"] += 1
        if len(example.ids) > max_length:
            counts["truncated"] += 1
            example = Tokenized(example.ids[:max_length], example.trained[:max_length])
        if any(example.trained):
            out.append(example)
        else:
            counts["dropped_too_long"] += 1
    if not out:
        raise UserError(f"{path}: no example with an assistant token to train on "
                        f"({counts['rows']} rows; max_length {max_length})")
    return out, counts


def split_held_out(examples: list[Tokenized], share: float, seed: int) -> tuple[list[Tokenized], list[Tokenized]]:
    """(train, held-out): a seeded `share` of the examples (at least one when share > 0), never all."""
    order = list(range(len(examples)))
    random.Random(f"sft-held-out-{seed}").shuffle(order)
    n_held = min(max(1, round(share * len(examples))) if share > 0 else 0, len(examples) - 1)
    held = set(order[:n_held])
    train = [e for i, e in enumerate(examples) if i not in held]
    return train, [e for i, e in enumerate(examples) if i in held]


# ---- rows and batches ----------------------------------------------------------------------------


def pack_rows(examples: list[Tokenized], max_length: int, packing: bool, seed: int) -> list[list[int]]:
    """Rows as lists of example indices: with packing, whole examples fill rows of `max_length`
    tokens in a seeded order (next-fit); without it, one example per row."""
    order = list(range(len(examples)))
    random.Random(f"sft-pack-{seed}").shuffle(order)
    if not packing:
        return [[i] for i in order]
    rows: list[list[int]] = []
    current, used = [], 0
    for i in order:
        n = len(examples[i].ids)
        if current and used + n > max_length:
            rows.append(current)
            current, used = [], 0
        current.append(i)
        used += n
    return rows + ([current] if current else [])


@functools.lru_cache(maxsize=4)
def epoch_order(n_rows: int, seed: int, epoch: int) -> tuple[int, ...]:
    order = list(range(n_rows))
    random.Random(f"sft-epoch-{seed}-{epoch}").shuffle(order)
    return tuple(order)


def step_rows(n_rows: int, batch_size: int, seed: int, step: int) -> list[int]:
    """The row indices of step `step` (1-based): a pure function of its arguments."""
    out = []
    for g in range((step - 1) * batch_size, step * batch_size):
        epoch, pos = divmod(g, n_rows)
        out.append(epoch_order(n_rows, seed, epoch)[pos])
    return out


def collate(examples: list[Tokenized], rows: list[list[int]], pad_id: int, packing: bool) -> SFTBatch:
    """Right-padded rows; padding is a block of its own (never a label, attended to by nothing)."""
    width = max(sum(len(examples[i].ids) for i in row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id)  # (B, T)
    labels = torch.full((len(rows), width), -100)  # (B, T)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)  # (B, T)
    lengths = []
    for r, row in enumerate(rows):
        at = 0
        for i in row:
            ids, n = torch.tensor(examples[i].ids), len(examples[i].ids)
            input_ids[r, at: at + n] = ids
            labels[r, at: at + n] = ids.masked_fill(~torch.tensor(examples[i].trained), -100)
            position_ids[r, at: at + n] = torch.arange(n)
            at += n
        position_ids[r, at:] = torch.arange(width - at)
        lengths.append(at)
    attention_mask = None
    if not packing:
        attention_mask = (torch.arange(width)[None] < torch.tensor(lengths)[:, None]).long()  # (B, T)
    return SFTBatch(input_ids, labels, position_ids, attention_mask)


def assistant_nll(model, batch: SFTBatch) -> tuple[torch.Tensor, int]:
    """(summed negative log-likelihood of the labelled tokens, their count)."""
    device = next(model.parameters()).device
    mask = None if batch.attention_mask is None else batch.attention_mask.to(device)
    logits = model(input_ids=batch.input_ids.to(device), attention_mask=mask,
                   position_ids=batch.position_ids.to(device), use_cache=False).logits  # (B, T, V)
    return label_nll(logits, batch.labels.to(device))


def label_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Logits at t predict the token at t+1; positions whose label is -100 contribute nothing."""
    targets = labels[:, 1:]  # (B, T-1)
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets.flatten(),
                                            ignore_index=-100, reduction="sum")
    return nll, int((targets != -100).sum())


@torch.no_grad()
def held_out_loss(model, examples: list[Tokenized], rows: list[list[int]], cfg, pad_id: int) -> float | None:
    if not rows:
        return None
    total, count = 0.0, 0
    for start in range(0, len(rows), cfg.batch_size):
        nll, n = assistant_nll(model, collate(examples, rows[start: start + cfg.batch_size], pad_id, cfg.packing))
        total, count = total + nll.item(), count + n
    return total / max(count, 1)


# ---- the stage -----------------------------------------------------------------------------------


def setup_model(cfg, model_dir: Path, device: str = "cpu"):
    """The model to train on `device`: all weights, or LoRA adapters (peft) on every linear layer."""
    model, tokenizer = load_model(model_dir, device=device), load_tokenizer(model_dir)
    if cfg.lora:
        model = with_lora(model, cfg.lora_rank, cfg.lora_alpha)
    model.train()
    return model, tokenizer


def total_steps(cfg, n_rows: int, batch_size: int) -> int:
    return math.ceil(cfg.epochs * n_rows / batch_size) if cfg.epochs > 0 else cfg.steps


def run_sft(cfg: SFTConfig, ctx: StageContext) -> Path:
    torch.manual_seed(ctx.seed)
    model, tokenizer = setup_model(cfg, ctx.model, ctx.device)
    data_path = resolve_data(cfg.data, ctx.run_dir)
    examples, counts = load_examples(data_path, tokenizer, cfg.max_length)
    train, held = split_held_out(examples, cfg.held_out_share, ctx.seed)
    rows, held_rows = (pack_rows(part, cfg.max_length, cfg.packing, ctx.seed) for part in (train, held))
    batch_size = min(cfg.batch_size, len(rows))  # no batch larger than an epoch
    steps = total_steps(cfg, len(rows), batch_size)
    cut = f"; {counts['truncated']} cut to {cfg.max_length} tokens" if counts["truncated"] else ""
    print(f"sft: {len(train)} training examples in {len(rows)} rows ({len(held)} held out) from {data_path}; "
          f"{steps} steps{cut}")
    optimizer, scheduler = adamw(model, cfg.lr, cfg.weight_decay, max(cfg.warmup_steps, 1), steps, 0.1,
                                 betas=(0.9, 0.95))
    run = TrainingRun("sft", ctx.stage_dir, {"model": model, "optimizer": optimizer, "scheduler": scheduler},
                      steps, ctx.resume, cfg.checkpoint_every, cfg.keep_checkpoints, cfg.report_to, asdict(cfg))

    meter = StageMeter(model.config, stage=ctx.stage_id, lora_rank=cfg.lora_rank if cfg.lora else 0)
    pad, tokens, t0 = tokenizer.pad_token_id, 0, time.perf_counter()
    for step in run.steps():
        batch_rows = [rows[i] for i in step_rows(len(rows), batch_size, ctx.seed, step)]
        batch = collate(train, batch_rows, pad, cfg.packing)
        with meter.phase("train"):
            nll, n_labels = assistant_nll(model, batch)
            loss = nll / max(n_labels, 1)  # token mean over the batch's assistant tokens
            loss.backward()
            grad_norm = optimizer_step(model, optimizer, scheduler, cfg.grad_clip)
        lengths = [len(train[i].ids) for row in batch_rows for i in row]  # packed examples attend within themselves
        meter.add_sequences(lengths, kind="train", train=True)
        tokens += sum(lengths)
        if step % cfg.log_every == 0 or step == steps:
            row = {"step": step, "epoch": step * batch_size / len(rows), "loss": loss.item(),
                   "held_out_loss": held_out_loss(model, held, held_rows, cfg, pad),
                   "lr": scheduler.get_last_lr()[0], "grad_norm": grad_norm.item(),
                   "assistant_tokens": n_labels, "tokens_per_s": tokens / (time.perf_counter() - t0)}
            held_text = "-" if row["held_out_loss"] is None else f"{row['held_out_loss']:.3f}"
            run.write(row, info=f"loss {row['loss']:.3f} | held-out {held_text}")

    final = model.merge_and_unload() if cfg.lora else model
    out = save_model_folder(final.eval(), tokenizer, ctx.stage_dir / "model")
    meter.write(ctx.stage_dir)
    rows_logged = run.log.rows()
    plot_curves(rows_logged, ["loss", "held_out_loss"], ctx.stage_dir / "loss.png", "sft")
    if rows_logged:
        last_row = rows_logged[-1]
        print(f"sft done: loss {last_row['loss']:.3f}, held-out loss {last_row.get('held_out_loss')}; "
              f"model in {out}")
    return out
