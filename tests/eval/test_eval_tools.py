"""Evaluation with tools (r1zero.eval.tools): the multi-turn loop runs the calculator, and eval.json's
tool keys are right."""

from __future__ import annotations

import pytest

from r1zero.eval.evaluate import EvalOptions, evaluate_model
from r1zero.eval.tools import tool_summary

CALL = '<think><tool_call>{"name": "calculator", "arguments": {"expression": "12*34"}}</tool_call>'


def item(completions, correct, greedy=None):
    out = {"completions": completions, "correct": correct}
    if greedy is not None:
        out["greedy"] = {"text": greedy}
    return out


def test_tool_summary_by_hand():
    items = [item([CALL + "</think><answer>408</answer>", "<think></think><answer>5</answer>"], [True, False],
                  greedy=CALL + "</think><answer>408</answer>"),
             item([CALL + CALL + "</think><answer>1</answer>", "<think></think><answer>408</answer>"], [False, True],
                  greedy="<think></think><answer>3</answer>")]
    assert tool_summary(items) == {"tool_call_share": 0.5, "tool_calls": 0.75, "accuracy_with_tool": 0.5,
                                   "accuracy_without_tool": 0.5, "greedy_tool_call_share": 0.5}
    assert tool_summary([item(["<answer>1</answer>"], [True])]) == {
        "tool_call_share": 0.0, "tool_calls": 0.0, "accuracy_with_tool": None, "accuracy_without_tool": 1.0}


@pytest.fixture(scope="module", params=[False, True], ids=["byte_tags", "tool_tokens"])
def calling_model(request, tiny_model, tmp_path_factory):
    """The tiny model taught, on two held-out products, to call the calculator and copy its reply; no
    loss on the reply, so it answers right only if the reply is really there. With `tool_tokens` the
    tags are single tokens and `</tool_call>` stops a turn as a stop token; without, by a cut."""
    import torch

    from r1zero import tasks
    from r1zero.models.io import load_model, load_tokenizer, save_model_folder
    from r1zero.tasks.arithmetic import Problem
    from r1zero.tasks.tool_corpus import tool_solution, turn_token_ids
    from r1zero.tools.format import TOOL_RESPONSE_OPEN
    from tests.conftest import build_tiny

    base = build_tiny(tmp_path_factory.mktemp("tools") / "tagged", tool_tokens=True) if request.param else tiny_model
    torch.manual_seed(0)
    model, tok = load_model(base), load_tokenizer(base)
    assert (len(tok("</tool_call>", add_special_tokens=False)["input_ids"]) == 1) == request.param
    rows = []
    for e in tasks.get("products").examples("test", n=2):
        a, b = map(int, e.meta["id"].split("*"))
        text = e.prompt + tool_solution(Problem(a, "*", b))
        ids = turn_token_ids(tok, text) + [tok.eos_token_id]
        call = len(turn_token_ids(tok, text[: text.index(TOOL_RESPONSE_OPEN)]))
        reply = len(turn_token_ids(tok, text[: text.index("</think><answer>")]))
        labels = [-100 if i < len(tok(e.prompt)["input_ids"]) or call <= i < reply else t for i, t in enumerate(ids)]
        rows.append((ids, labels))
    width = max(len(ids) for ids, _ in rows)
    ids = torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r, _ in rows])  # (B, T)
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows])  # (B, T)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(120):
        loss = model(input_ids=ids, attention_mask=(ids != tok.pad_token_id).long(), labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return save_model_folder(model, tok, tmp_path_factory.mktemp("tools") / "calling")


def test_eval_with_tools_runs_the_calculator_and_reports_flat_keys(calling_model):
    opts = EvalOptions(task="products", problems=2, samples=2, temperature=0.0, max_new_tokens=96, progress=False,
                       tools=["calculator"], max_turns=2)
    summary = evaluate_model(calling_model, opts, seed=0).summary
    assert summary["tool_call_share"] == 1.0 and summary["greedy_tool_call_share"] == 1.0
    assert summary["greedy_pass@1"] == 1.0 and summary["accuracy_with_tool"] == 1.0
    assert summary["accuracy_without_tool"] is None
    plain = evaluate_model(calling_model, EvalOptions(task="products", problems=2, samples=2, temperature=0.0,
                                                      max_new_tokens=96, progress=False), seed=0).summary
    assert "tool_call_share" not in plain  # without tools, eval.json is as before
