"""How one next token is drawn from logits: temperature, top-k, top-p, greedy. The one place for it.

Used by the hf sampler's decode loop (r1zero.rollout.decode), by its `generate` fallback for other
architectures (`DrawProcessor`), and by the server (r1zero.serve.decoding), so training rollouts,
evaluation and serving draw from the same distribution:

    z = logits / T                                   (T = 0: greedy, argmax of the logits)
    keep the top_k largest z (ties with the k-th kept; k = 0: all), as Hugging Face's TopK warper
    then keep the most likely tokens whose softmax mass before them is below top_p, over the
    top-k survivors renormalised (the top token always stays), as Hugging Face's TopP warper
    draw one token from softmax(z) over the kept tokens

Top-k then top-p in that order is what `generate` and vLLM do. A token is drawn by inverse CDF:
one uniform per row and a search in the cumulative probabilities, so a row's draw depends only on
its own uniform (a seeded request draws the same token whatever else shares its batch).

Settings are scalars (one for the batch) or per-row tensors (B,). The log-probs a sampler reports
are not this function's business: they are `log_softmax(z)` over the full vocabulary, before
truncation (see r1zero.rollout.hf).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Setting = float | int | torch.Tensor  # one value for every row, or (B,) one per row
Uniform = Callable[[int, torch.dtype, torch.device], torch.Tensor]  # rows -> (rows, 1) uniforms in [0, 1)


def uniform_from(gen: torch.Generator | None) -> Uniform:
    """Uniforms from one generator (None: torch's default one)."""
    return lambda rows, dtype, device: torch.rand((rows, 1), generator=gen, device=device, dtype=dtype)


def uniform_per_row(generators: Sequence[torch.Generator | None], default: torch.Generator) -> Uniform:
    """Row i's uniform from `generators[i]`, or from `default` where that is None (CPU generators)."""
    def draw(rows: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        u = torch.rand((rows, 1), generator=default, dtype=dtype)  # (B, 1)
        for i, g in enumerate(generators):
            if g is not None:
                u[i, 0] = torch.rand((), generator=g, dtype=dtype)
        return u.to(device)

    return draw


def per_row(value: Setting, like: torch.Tensor) -> torch.Tensor:
    """(B, 1) of a scalar or (B,) setting, on `like`'s device."""
    return torch.as_tensor(value, device=like.device).reshape(-1, 1).expand(like.shape[0], 1)


def scale(logits: torch.Tensor, temperature: Setting) -> torch.Tensor:
    """logits / T (B, V); rows with T <= 0 (greedy) keep their logits."""
    if not isinstance(temperature, torch.Tensor):
        return logits if temperature <= 0 or temperature == 1.0 else logits / temperature
    t = per_row(temperature, logits).to(logits.dtype)  # (B, 1)
    return logits / torch.where(t > 0, t, torch.ones_like(t))


def top_k_filter(z: torch.Tensor, top_k: Setting) -> torch.Tensor:
    """-inf on every token below the k-th largest of its row (k <= 0: the row unchanged)."""
    k = per_row(top_k, z).long().clamp(max=z.shape[-1])  # (B, 1)
    kth = z.sort(dim=-1, descending=True).values.gather(-1, (k - 1).clamp(min=0))  # (B, 1)
    return z.masked_fill((z < kth) & (k > 0), float("-inf"))


def top_p_filter(z: torch.Tensor, top_p: Setting) -> torch.Tensor:
    """-inf on the tokens outside the nucleus: those whose mass before them (most likely first) is >= p."""
    ascending, order = torch.sort(z, descending=False)  # (B, V)
    mass_up_to = ascending.softmax(dim=-1).cumsum(dim=-1)  # (B, V) of itself and every less likely token
    # 1 - p in float64, then the logits' dtype: the threshold Hugging Face's warper compares with
    p = torch.as_tensor(top_p, dtype=torch.float64, device=z.device).reshape(-1, 1)  # (B or 1, 1)
    outside = mass_up_to <= (1 - p).to(mass_up_to.dtype)  # (B, V)
    outside[..., -1:] = False  # the most likely token always stays
    return z.masked_fill(outside.scatter(1, order, outside), float("-inf"))


def is_greedy(temperature: Setting) -> bool:
    return bool((torch.as_tensor(temperature) <= 0).all())


def draw_tokens(logits: torch.Tensor, temperature: Setting, top_p: Setting = 1.0, top_k: Setting = 0,
                uniform: Uniform | None = None, banned: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens (B,), z = logits / T (B, V)) from logits (B, V). `banned` (S,) ids are never drawn
    (min-new-tokens masking of the stop ids); rows with T <= 0 take the argmax. The uniform is drawn
    only when some row samples, so greedy decoding leaves the random state alone."""
    z = scale(logits, temperature)  # (B, V)
    processed = z if banned is None else z.index_fill(1, banned, float("-inf"))  # (B, V)
    greedy = processed.argmax(-1)  # (B,)
    if is_greedy(temperature):
        return greedy, z
    if bool((torch.as_tensor(top_k) > 0).any()):
        processed = top_k_filter(processed, top_k)
    if bool((torch.as_tensor(top_p) < 1.0).any()):
        processed = top_p_filter(processed, top_p)
    cdf = (processed - processed.amax(-1, keepdim=True)).exp_().cumsum_(-1)  # (B, V) unnormalised
    total = cdf[:, -1:]  # (B, 1)
    u = (uniform or uniform_from(None))(total.shape[0], total.dtype, total.device)  # (B, 1)
    # kept below the total, so the search lands on a token of positive probability
    value = torch.minimum(u * total, torch.nextafter(total, total.new_zeros(())))
    tokens = torch.searchsorted(cdf, value, right=True)[:, 0]  # (B,)
    if isinstance(temperature, torch.Tensor):
        tokens = torch.where(per_row(temperature, z)[:, 0] <= 0, greedy, tokens)
    return tokens, z


class DrawProcessor:
    """A `generate` logits processor that draws with `draw_tokens` and leaves only the drawn token
    possible, so `generate` run greedily (do_sample=False) samples exactly as r1zero's own loop."""

    def __init__(self, temperature: float, top_p: float, top_k: int):
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        tokens, _ = draw_tokens(scores.float(), self.temperature, self.top_p, self.top_k)  # (B,)
        return torch.full_like(scores, float("-inf")).scatter_(1, tokens[:, None], 0.0)
