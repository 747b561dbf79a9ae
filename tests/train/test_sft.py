"""SFT: labels only on assistant tokens, packing that keeps attention within each example, bad rows
named by file and line, training that learns (full and LoRA), and exact resume after a crash."""

import json
import random

import pytest
import torch
from safetensors.torch import load_file

from r1zero.config import SFTConfig
from r1zero.errors import UserError
from r1zero.models.io import load_model, load_tokenizer
from r1zero.stages import StageContext
from r1zero.tasks.arithmetic import ArithmeticGenerator, solution_text
from r1zero.train import scaffold, sft
from r1zero.train.sft import (
    Tokenized,
    assistant_nll,
    collate,
    label_nll,
    load_examples,
    pack_rows,
    row_segments,
    run_sft,
    step_rows,
    tokenize_segments,
)
from tests.conftest import build_tiny

CHAT = {"messages": [
    {"role": "system", "content": "Think first."},
    {"role": "user", "content": "12+7="},
    {"role": "assistant", "content": "<think>2+7+0=9>9;1+0+0=1>19</think><answer>19</answer>"},
    {"role": "user", "content": "And 3*4="},
    {"role": "assistant", "content": "<think></think><answer>12</answer>"},
]}


def encode(tok, row: dict) -> Tokenized:
    return tokenize_segments(tok, *row_segments(row, tok))


def runs(ids, flags, want: bool) -> list[list[int]]:
    """Maximal runs of ids whose flag is `want`."""
    out, current = [], []
    for i, f in zip(ids, flags):
        if f == want:
            current.append(i)
        elif current:
            out, current = out + [current], []
    return out + ([current] if current else [])


def test_labels_are_minus_100_exactly_on_non_assistant_tokens(tiny_model):
    tok = load_tokenizer(tiny_model)
    ex = encode(tok, CHAT)
    assert tok.decode(ex.ids) == tok.apply_chat_template(CHAT["messages"], tokenize=False)
    trained = [tok.decode(r) for r in runs(ex.ids, ex.trained, True)]
    assert trained == [m["content"] + "<|end|>" for m in CHAT["messages"] if m["role"] == "assistant"]
    untrained = [tok.decode(r) for r in runs(ex.ids, ex.trained, False)]
    assert untrained == ["Think first.\nUser: 12+7=\nAssistant: ", "\nUser: And 3*4=\nAssistant: ", "\n"]

    raw = encode(tok, {"prompt": "12+7=", "completion": "<think></think><answer>19</answer>"})
    assert raw.ids[-1] == tok.eos_token_id and raw.trained[-1]
    assert tok.decode([i for i, f in zip(raw.ids, raw.trained) if not f]) == "12+7="

    batch = collate([ex, raw], [[0, 1]], tok.pad_token_id, packing=True)
    ids, labels = batch.input_ids[0], batch.labels[0]
    flags = torch.tensor(ex.trained + raw.trained)
    assert torch.equal(labels[: len(flags)] == -100, ~flags)
    assert torch.equal(labels[: len(flags)][flags], ids[: len(flags)][flags])
    assert labels[0] == -100 and labels[len(ex.ids)] == -100  # each example's first token: no label


def test_prompt_tokens_contribute_no_loss_and_no_gradient(tiny_model):
    tok = load_tokenizer(tiny_model)
    raw = {"prompt": "98-5=", "completion": "<think></think><answer>93</answer>"}
    examples = [encode(tok, CHAT), encode(tok, raw)]
    batch = collate(examples, [[0], [1]], tok.pad_token_id, packing=False)
    logits = torch.randn(*batch.input_ids.shape, len(tok), requires_grad=True)  # (B, T, V)
    nll, count = label_nll(logits, batch.labels)
    (nll / count).backward()

    predicts_assistant = torch.zeros_like(batch.labels, dtype=torch.bool)  # logits at t score token t+1
    predicts_assistant[:, :-1] = batch.labels[:, 1:] != -100
    logp = torch.log_softmax(logits.detach(), -1)[:, :-1].gather(-1, batch.input_ids[:, 1:, None])[..., 0]
    by_hand = -logp[predicts_assistant[:, :-1]].mean()
    assert count == int(predicts_assistant.sum()) and torch.allclose(nll / count, by_hand)
    grad_norm = logits.grad.abs().sum(-1)  # (B, T)
    assert (grad_norm[~predicts_assistant] == 0).all() and (grad_norm[predicts_assistant] > 0).all()

    changed = logits.detach().clone()  # any change to what is predicted at prompt positions
    changed[~predicts_assistant] = torch.randn(int((~predicts_assistant).sum()), len(tok))
    assert label_nll(changed, batch.labels)[0] == nll.detach()
    changed[predicts_assistant] += 1.0 * torch.randn_like(changed[predicts_assistant])
    assert label_nll(changed, batch.labels)[0] != nll.detach()


@pytest.mark.parametrize("arch", ["deepseek_v3", "qwen2"])
def test_packed_rows_keep_attention_within_each_example(tmp_path, tiny_model, arch):
    model_dir = tiny_model if arch == "deepseek_v3" else build_tiny(tmp_path / arch, arch=arch)
    model, tok = load_model(model_dir), load_tokenizer(model_dir)
    examples = [encode(tok, CHAT), encode(tok, {"prompt": "5*6=", "completion": "<answer>30</answer>"}),
                encode(tok, {"prompt": "77+1=", "completion": "<think>7+1+0=8>8;7+0+0=7>78</think>"})]
    with torch.no_grad():
        packed = collate(examples, [[0, 1, 2]], tok.pad_token_id, packing=True)
        logits = model(input_ids=packed.input_ids, position_ids=packed.position_ids, use_cache=False).logits[0]
        at, total = 0, 0.0
        for ex in examples:
            alone = model(input_ids=torch.tensor([ex.ids]), use_cache=False).logits[0]
            diff = (logits[at: at + len(ex.ids)] - alone).abs().max().item()
            assert diff < 1e-4, f"{arch}: packed logits differ from the example alone by {diff}"
            total += assistant_nll(model, collate([ex], [[0]], tok.pad_token_id, packing=True))[0].item()
            at += len(ex.ids)
        assert abs(assistant_nll(model, packed)[0].item() - total) < 1e-3


def test_packing_and_batches_are_pure_functions_of_seed_and_step():
    examples = [Tokenized([1] * n, [False] + [True] * (n - 1)) for n in (10, 30, 50, 70, 20, 40)]
    rows = pack_rows(examples, 100, packing=True, seed=3)
    assert sorted(i for r in rows for i in r) == list(range(6))
    assert all(sum(len(examples[i].ids) for i in r) <= 100 for r in rows)
    assert rows == pack_rows(examples, 100, packing=True, seed=3)
    assert pack_rows(examples, 100, packing=False, seed=3) == [[i] for r in rows for i in r]
    steps = [step_rows(len(rows), 2, 0, s) for s in range(1, 6)]
    assert steps == [step_rows(len(rows), 2, 0, s) for s in range(1, 6)]
    epoch = [i for s in steps for i in s][: len(rows)]
    assert sorted(epoch) == list(range(len(rows)))  # each epoch visits every row once


@pytest.mark.parametrize("line, error", [
    ("{not json", "bad JSON"),
    ('{"text": "hello"}', "expected `messages`"),
    ('{"messages": [{"role": "user", "content": "hi"}]}', "no assistant message"),
    ('{"messages": [{"role": "robot", "content": "hi"}]}', "message 0 must be"),
    ('{"prompt": "1+1=", "completion": ""}', "empty `completion`"),
    ("[1, 2]", "expected an object"),
])
def test_a_bad_row_names_file_and_line(tmp_path, tiny_model, line, error):
    good = json.dumps({"prompt": "1+1=", "completion": "<answer>2</answer>"})
    path = tmp_path / "data.jsonl"
    path.write_text(f"{good}\n\n{line}\n{good}\n")
    with pytest.raises(UserError) as e:
        load_examples(path, load_tokenizer(tiny_model), 128)
    assert f"{path}: line 3: " in str(e.value) and error in str(e.value)


def test_data_may_name_an_earlier_sample_stage(tmp_path):
    (tmp_path / "rs").mkdir()
    (tmp_path / "rs" / "data.jsonl").write_text("{}\n")
    assert sft.resolve_data("rs", tmp_path) == tmp_path / "rs" / "data.jsonl"
    with pytest.raises(UserError, match="earlier sample stage"):
        sft.resolve_data("cold_start", tmp_path)


def trace_file(path, n: int, seed: int = 0):
    rng, gen = random.Random(seed), ArithmeticGenerator(2, 2, "+")
    rows = []
    for _ in range(n):
        p = gen.problem(rng)
        rows.append({"prompt": f"{p.text}=", "completion": solution_text(p, "worked")})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


FAST = {"batch_size": 8, "max_length": 96, "lr": 3e-3, "warmup_steps": 2, "log_every": 5, "checkpoint_every": 0}


def final_metrics(stage_dir) -> tuple[dict, dict]:
    rows = [json.loads(x) for x in (stage_dir / "metrics.jsonl").read_text().splitlines()]
    return rows[0], rows[-1]


def assert_weights_changed(base, out):
    assert (out / "config.json").is_file() and not (out / "adapter_config.json").exists()
    before, after = load_file(base / "model.safetensors"), load_file(out / "model.safetensors")
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_sft_lowers_the_held_out_loss(tmp_path):
    base = build_tiny(tmp_path / "base")
    ctx = StageContext(tmp_path, tmp_path / "sft", "sft", 0, base, resume=False)
    data = trace_file(tmp_path / "traces.jsonl", 120)
    out = run_sft(SFTConfig(data=str(data), steps=20, held_out_share=0.1, **FAST), ctx)
    first, last = final_metrics(tmp_path / "sft")
    print(f"held-out loss {first['held_out_loss']:.3f} -> {last['held_out_loss']:.3f}")
    assert last["held_out_loss"] < first["held_out_loss"] - 0.5
    assert_weights_changed(base, out)
    budget = json.loads((tmp_path / "sft" / "budget.json").read_text())  # the bill: 20 steps of 8 packed rows
    assert 20 * 8 * 40 <= budget["tokens"]["train"] <= 20 * 8 * 96 and budget["flops"]["train"] > 0


def test_lora_adapters_train_and_are_merged_into_the_saved_folder(tmp_path):
    base = build_tiny(tmp_path / "base")
    ctx = StageContext(tmp_path, tmp_path / "sft", "sft", 0, base, resume=False)
    data = trace_file(tmp_path / "traces.jsonl", 4)  # memorise a few: a random base gives LoRA little to steer
    out = run_sft(SFTConfig(data=str(data), steps=20, lora=True, lora_rank=8, held_out_share=0.0,
                            **{**FAST, "lr": 2e-2, "log_every": 1}), ctx)
    first, last = final_metrics(tmp_path / "sft")
    assert last["loss"] < first["loss"] - 0.2 and last["held_out_loss"] is None
    assert_weights_changed(base, out)


def test_crashed_sft_resumes_bit_exact(tmp_path, monkeypatch):
    base = build_tiny(tmp_path / "base")
    data = trace_file(tmp_path / "traces.jsonl", 60)
    cfg = SFTConfig(data=str(data), steps=12, **{**FAST, "checkpoint_every": 4, "log_every": 2})
    straight = run_sft(cfg, StageContext(tmp_path, tmp_path / "straight", "sft", 0, base, resume=False))

    real_save = scaffold.save_checkpoint  # every training stage checkpoints through the scaffold

    def save_then_crash(root, step, *args, **kwargs):
        real_save(root, step, *args, **kwargs)
        if step == 8:
            raise KeyboardInterrupt("killed after the step-8 checkpoint")

    monkeypatch.setattr(scaffold, "save_checkpoint", save_then_crash)
    crashed = StageContext(tmp_path, tmp_path / "crashed", "sft", 0, base, resume=False)
    with pytest.raises(KeyboardInterrupt):
        run_sft(cfg, crashed)
    monkeypatch.setattr(scaffold, "save_checkpoint", real_save)
    resumed = run_sft(cfg, StageContext(tmp_path, tmp_path / "crashed", "sft", 0, base, resume=True))

    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    def metrics(stage: str) -> list[dict]:
        rows = (tmp_path / stage / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(x).items() if k != "tokens_per_s"} for x in rows]

    assert metrics("straight") == metrics("crashed")
