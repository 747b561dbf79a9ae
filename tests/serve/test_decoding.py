"""Sampling, incremental detokenising, stop strings and the reasoning split."""

from __future__ import annotations

import torch

from r1zero.serve.decoding import IncrementalDetokenizer, StopText, held_back, sample_tokens
from r1zero.serve.reasoning import ReasoningStream, split_reasoning


def test_sample_tokens_respects_each_rows_settings():
    logits = torch.tensor([[0.0, 1.0, 5.0, 2.0]] * 4)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        out = sample_tokens(logits, temperature=torch.tensor([0.0, 1.0, 1.0, 5.0]), top_p=torch.tensor([1.0, 1.0, 1e-3, 1.0]),
                            top_k=torch.tensor([0, 1, 0, 2]), generators=[None] * 4, default=g)
        assert out[0] == 2  # greedy
        assert out[1] == 2  # top-k 1
        assert out[2] == 2  # top-p keeps the top token only
        assert out[3] in (2, 3)  # top-k 2 at a high temperature


def test_seeded_rows_draw_from_their_own_generator():
    logits = torch.zeros(3, 50)

    def draw():
        gens = [torch.Generator().manual_seed(7), None, torch.Generator().manual_seed(7)]
        return sample_tokens(logits, torch.ones(3), torch.ones(3), torch.zeros(3, dtype=torch.long), gens,
                             torch.Generator().manual_seed(len(draws)))

    draws = []
    for _ in range(3):
        draws.append(draw())
    assert all(d[0] == d[2] == draws[0][0] for d in draws)


def test_incremental_detokenizer_matches_full_decode(tiny_model):
    from r1zero.models.io import load_tokenizer

    tok = load_tokenizer(tiny_model)
    text = "<think>3+9+0=12>2;é ü → 中文</think><answer>182</answer>"
    ids = tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    detok = IncrementalDetokenizer(tok)
    pieces = [detok.push(i) for i in ids]
    assert "".join(pieces) == tok.decode(ids, skip_special_tokens=True) == text
    assert all("\ufffd" not in p for p in pieces)


def test_stop_text_cuts_and_holds_back():
    stop = StopText(["STOP", "\n\n"])
    stop.push("abc ST")
    assert stop.text[: stop.ready(final=False)] == "abc "  # "ST" may begin STOP
    stop.push("x")
    assert stop.ready(final=False) == len("abc STx") and not stop.stopped
    stop.push(" yy STO")
    stop.push("Pzz")
    assert stop.stopped and stop.text == "abc STx yy "
    assert held_back("ab<", ["<think>"]) == 1 and held_back("ab", ["<think>"]) == 0


def test_split_reasoning():
    assert split_reasoning("<think>a b</think><answer>42</answer>") == ("a b", "42")
    assert split_reasoning("just text") == ("", "just text")
    assert split_reasoning("<think>still thinking") == ("still thinking", "")
    assert split_reasoning("a b</think> 42", starts_in_think=True) == ("a b", "42")
    assert split_reasoning("<think>a</think><answer>b</think>c</answer>") == ("a", "bc")


def test_reasoning_stream_equals_the_whole_split():
    text = "<think>3+9=12>2;\n1+1=2</think>\n<answer>22</answer>"
    for step in (1, 2, 3, 7):
        stream, fields = ReasoningStream(), ["", ""]
        pieces = [text[i : i + step] for i in range(0, len(text), step)]
        for k, piece in enumerate(pieces):
            for f, delta in enumerate(stream.feed(piece, final=k == len(pieces) - 1)):
                assert "<" not in delta, "no tag leaks into a field"
                fields[f] += delta
        assert tuple(fields) == split_reasoning(text)
