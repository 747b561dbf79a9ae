"""The one token-drawing function: its samples follow softmax(logits / T) after top-k and top-p truncation
(a chi-square test on a small vocabulary), its truncation is Hugging Face's, and the decode loop, the
`generate` fallback and the server all draw through it."""

import math

import pytest
import torch
from transformers import TopKLogitsWarper, TopPLogitsWarper

from r1zero.rollout import decode
from r1zero.rollout.sampling import DrawProcessor, draw_tokens, top_k_filter, top_p_filter, uniform_from
from r1zero.serve.decoding import sample_tokens

LOGITS = [2.0, 1.4, 1.0, 0.3, -0.2, -1.0, -1.5, -3.0]  # V = 8
DRAWS = 40_000
# chi-square critical values at p = 0.001, by degrees of freedom
CRITICAL = {1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47, 5: 20.52, 6: 22.46, 7: 24.32}


def expected(logits: list[float], temperature: float, top_p: float, top_k: int) -> list[float]:
    """The target distribution, written out plainly: softmax(logits / T); keep the k most likely;
    renormalise; keep the most likely tokens while the mass before them is below p; renormalise."""
    weights = [math.exp(x / temperature) for x in logits]
    probs = [w / sum(weights) for w in weights]
    order = sorted(range(len(probs)), key=lambda i: -probs[i])
    kept = order[:top_k] if top_k else order
    mass = sum(probs[i] for i in kept)
    nucleus, before = [], 0.0
    for i in kept:
        if before < top_p:
            nucleus.append(i)
        before += probs[i] / mass
    total = sum(probs[i] for i in nucleus)
    return [probs[i] / total if i in nucleus else 0.0 for i in range(len(probs))]


def chi_square(counts: torch.Tensor, probs: list[float]) -> tuple[float, int]:
    """(statistic, degrees of freedom) over the tokens of positive probability; a drawn token of
    probability 0 makes the statistic infinite."""
    n = int(counts.sum())
    if any(c > 0 and p == 0 for c, p in zip(counts.tolist(), probs)):
        return math.inf, 1
    cells = [(c, n * p) for c, p in zip(counts.tolist(), probs) if p > 0]
    return sum((c - e) ** 2 / e for c, e in cells), len(cells) - 1


CASES = [(0.7, 1.0, 0), (1.6, 1.0, 0), (1.0, 1.0, 4), (0.7, 0.8, 0), (1.3, 0.75, 5), (0.5, 0.9, 3)]


@pytest.mark.parametrize("temperature, top_p, top_k", CASES)
def test_draws_follow_the_truncated_tempered_softmax(temperature, top_p, top_k):
    logits = torch.tensor([LOGITS] * DRAWS)  # (N, V): one draw per row
    tokens, _ = draw_tokens(logits, temperature, top_p, top_k, uniform_from(torch.Generator().manual_seed(0)))
    stat, df = chi_square(torch.bincount(tokens, minlength=len(LOGITS)), expected(LOGITS, temperature, top_p, top_k))
    assert stat < CRITICAL[df], (stat, df)


def test_per_row_settings_follow_each_rows_distribution():
    """The server's form: settings per row, rows interleaved."""
    settings = [(0.7, 0.8, 0), (1.3, 0.75, 5)]
    rows = DRAWS // 2
    logits = torch.tensor([LOGITS] * (2 * rows))
    t, p, k = (torch.tensor([s[i] for s in settings] * rows) for i in range(3))
    tokens = sample_tokens(logits, t, p, k, [None] * len(logits), torch.Generator().manual_seed(1))
    for j, (temperature, top_p, top_k) in enumerate(settings):
        counts = torch.bincount(tokens[j::2], minlength=len(LOGITS))
        stat, df = chi_square(counts, expected(LOGITS, temperature, top_p, top_k))
        assert stat < CRITICAL[df], (j, stat, df)


def test_the_decode_loop_and_generate_draw_the_same_distribution():
    temperature, top_p, top_k = 1.3, 0.75, 5
    how = decode.Sampling(temperature, top_k, top_p, torch.tensor([7]), 0)
    logits = torch.tensor([LOGITS] * DRAWS)
    tokens, logp = decode.draw(logits, 3, how, torch.Generator().manual_seed(2))
    stat, df = chi_square(torch.bincount(tokens, minlength=len(LOGITS)), expected(LOGITS, temperature, top_p, top_k))
    assert stat < CRITICAL[df]
    # log-probs are of the full tempered distribution, not the truncated one
    assert torch.allclose(logp, torch.log_softmax(logits / temperature, -1).gather(1, tokens[:, None])[:, 0])
    torch.manual_seed(3)
    only = DrawProcessor(temperature, top_p, top_k)(None, logits)  # (N, V): 0 at the drawn token, else -inf
    assert bool(((only == 0).sum(-1) == 1).all())
    stat, df = chi_square(torch.bincount(only.argmax(-1), minlength=len(LOGITS)),
                          expected(LOGITS, temperature, top_p, top_k))
    assert stat < CRITICAL[df]


def test_min_new_tokens_bans_stop_ids_and_greedy_leaves_the_random_state_alone():
    logits = torch.tensor([LOGITS] * 500)
    how = decode.Sampling(1.0, 0, 1.0, torch.tensor([0, 1]), 5)
    tokens, _ = decode.draw(logits, 2, how, None)
    assert not bool(torch.isin(tokens, torch.tensor([0, 1])).any())
    state = torch.get_rng_state()
    tokens, _ = draw_tokens(logits, 0.0, 0.5, 3)
    assert bool((tokens == 0).all()) and torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("seed", range(5))
def test_truncation_is_hugging_faces(seed):
    """Bit for bit the TopK and TopP warpers `generate` uses, which the decode loop reproduced before."""
    z = torch.randn(64, 50, generator=torch.Generator().manual_seed(seed)) * 3
    for k in (1, 3, 10, 50):
        assert torch.equal(top_k_filter(z, k), TopKLogitsWarper(k)(None, z))
    for p in (1e-6, 0.3, 0.9, 0.95, 0.999):
        assert torch.equal(top_p_filter(z, p), TopPLogitsWarper(p)(None, z))
        assert torch.equal(top_p_filter(z, torch.full((64,), p, dtype=torch.float64)), TopPLogitsWarper(p)(None, z))
