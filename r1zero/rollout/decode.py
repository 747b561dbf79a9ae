"""A lean sampling loop for DeepSeek-V3 folders (MLA + MoE): the `hf` sampler's fast path.

Hugging Face `generate` spends most of a tiny model's decode step outside arithmetic: a DynamicCache
that grows by `torch.cat` every token (quadratic copying), the logits-processor and stopping-criteria
machinery, per-module Python dispatch, MoE routing by index ops. Here the prompt (positions counted
over real tokens, as in training) and then each new token run one flat loop over fused weights,
derived from the live parameters at every call:

- attention is absorbed MLA (DeepSeek-V2 sec. 2.1.2, as in r1zero.models.mla): W_UK folded into
  the query projection and W_UV into o_proj, so one matmul gives the latent query, the rotary parts
  and the new latent, and heads attend over a preallocated (B, P+T, r+dr) latent cache written in
  place;
- a MoE layer with few experts per token (E <= 2k) computes every routed expert and the shared one
  in two matmuls over concatenated weights, zero-weighting the experts a token was not routed to
  (E/k times the routed FLOPs, a handful of ops instead of per-expert gathers); with more experts it
  calls the model's own experts module;
- rows that stopped leave the batch (their caches are compacted) once an eighth of it has finished.

Sampling semantics are `generate`'s: the same order of processors (temperature, min-new-tokens masking
of the stop ids, top-k, top-p), greedy at T = 0, drawn by r1zero.rollout.sampling.draw_tokens, the one
token-drawing function of samplers, eval and server. Where it departs: a token is drawn by inverse-CDF
(one uniform per row and a search in the cumulative probabilities) rather than `torch.multinomial`;
and float sums run in another order (log-probs agree with a full forward pass
to ~1e-6). Anything this loop does not model (LoRA-wrapped or biased projections, q-LoRA, other
generation-config processors) makes `supports` false and the sampler uses `generate`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from transformers.models.deepseek_v3 import modeling_deepseek_v3 as D

from r1zero.rollout.sampling import draw_tokens, uniform_from

# generation-config fields (and their no-op values) that add a processor this loop does not have
NEUTRAL_GENERATION = {"repetition_penalty": (None, 1.0), "no_repeat_ngram_size": (None, 0),
                      "bad_words_ids": (None,), "suppress_tokens": (None,), "begin_suppress_tokens": (None,),
                      "forced_bos_token_id": (None,), "forced_eos_token_id": (None,), "min_p": (None,),
                      "typical_p": (None, 1.0), "epsilon_cutoff": (None, 0.0), "eta_cutoff": (None, 0.0),
                      "sequence_bias": (None,), "exponential_decay_length_penalty": (None,),
                      "top_h": (None,), "watermarking_config": (None,), "renormalize_logits": (None, False),
                      "min_length": (None, 0), "encoder_repetition_penalty": (None, 1.0)}


def supports(model) -> bool:
    """Whether `decode` can sample for `model` (a plain DeepSeek-V3 with nn.Linear projections)."""
    if type(model) is not D.DeepseekV3ForCausalLM:
        return False
    cfg, gen = model.config, model.generation_config
    if cfg.q_lora_rank is not None or cfg.attention_bias or cfg.hidden_act != "silu":
        return False
    if any(getattr(gen, k, None) not in ok for k, ok in NEUTRAL_GENERATION.items()):
        return False
    return all(type(m) is torch.nn.Linear for m in model.modules() if isinstance(m, torch.nn.Linear))


@dataclass
class Layer:
    """One decoder layer's fused weights, all (in, out) so that `x @ w` applies them."""

    in_norm: torch.Tensor  # (D,)
    w_in: torch.Tensor  # (D, H*r + (H+1)*dr + r): [latent query | rotary q per head, rotary k | latent kv]
    kv_norm: torch.Tensor  # (r,)
    w_out: torch.Tensor  # (H*r, D): W_UV then o_proj
    post_norm: torch.Tensor  # (D,)
    w_gate_up: torch.Tensor  # (D, 2*F): [gates | ups] of every expert (routed then shared) or the dense MLP
    w_down: torch.Tensor  # (F, D)
    moe: object | None  # the DeepseekV3MoE module (router, and experts when not fused), or None
    fused_experts: bool


def fuse_layer(layer) -> Layer:
    attn, mlp = layer.self_attn, layer.mlp
    H, dn, dr, dv, r = attn.num_heads, attn.qk_nope_head_dim, attn.qk_rope_head_dim, attn.v_head_dim, attn.kv_lora_rank
    wq = attn.q_proj.weight.view(H, dn + dr, -1) * attn.scaling  # (H, dq, D) softmax scale folded in
    wkv = attn.kv_b_proj.weight.view(H, dn + dv, r)
    w_uk, w_uv = wkv[:, :dn], wkv[:, dn:]  # (H, dn, r), (H, dv, r)
    q_lat = torch.einsum("hnd,hnr->dhr", wq[:, :dn], w_uk).flatten(1)  # (D, H*r)
    q_rot = wq[:, dn:].permute(2, 0, 1).flatten(1)  # (D, H*dr)
    kv_a = attn.kv_a_proj_with_mqa.weight  # (r+dr, D)
    w_in = torch.cat([q_lat, q_rot, kv_a[r:].T, kv_a[:r].T], dim=1)
    wo = attn.o_proj.weight.view(-1, H, dv)  # (D, H, dv)
    w_out = torch.einsum("hvr,dhv->hrd", w_uv, wo).flatten(0, 1)  # (H*r, D)
    if isinstance(mlp, D.DeepseekV3MoE):
        ex, sh = mlp.experts, mlp.shared_experts
        E, k = ex.num_experts, mlp.gate.top_k
        fused = E <= 2 * k
        experts = [] if not fused else [ex.gate_up_proj[:, : ex.intermediate_dim].flatten(0, 1),
                                         ex.gate_up_proj[:, ex.intermediate_dim :].flatten(0, 1)]
        gates = torch.cat(experts[:1] + [sh.gate_proj.weight])
        ups = torch.cat(experts[1:] + [sh.up_proj.weight])
        downs = ([ex.down_proj.transpose(1, 2).flatten(0, 1)] if fused else []) + [sh.down_proj.weight.T]
        w_gate_up, w_down, moe = torch.cat([gates, ups]).T, torch.cat(downs), mlp
    else:
        fused, moe = False, None
        w_gate_up, w_down = torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]).T, mlp.down_proj.weight.T
    return Layer(layer.input_layernorm.weight, w_in.contiguous(), attn.kv_a_layernorm.weight, w_out.contiguous(),
                 layer.post_attention_layernorm.weight, w_gate_up.contiguous(), w_down.contiguous(), moe, fused)


class Decoder:
    """The model's decode step over a latent cache; built per `sample` call from the live weights."""

    def __init__(self, model):
        cfg = model.config
        self.model, self.eps = model, cfg.rms_norm_eps
        self.H, self.r, self.dr = cfg.num_attention_heads, cfg.kv_lora_rank, cfg.qk_rope_head_dim
        self.interleave = cfg.rope_interleave
        self.layers = [fuse_layer(layer) for layer in model.model.layers]
        self.embed, self.norm = model.model.embed_tokens.weight, model.model.norm.weight
        self.lm_head = model.lm_head.weight.T  # (D, V)

    def rope_table(self, length: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin (L, dr) at positions 0..L-1, from the model's own rotary embedding."""
        cos, sin = self.model.model.rotary_emb(like, torch.arange(length, device=like.device)[None])
        return cos[0], sin[0]

    def rotate(self, x, cos, sin):
        """RoPE on x (..., n, dr) with cos, sin (..., 1, dr), as D.apply_rotary_pos_emb(_interleave)."""
        if self.interleave:
            half = x.shape[-1] // 2
            c, s, x1, x2 = cos[..., :half], sin[..., :half], x[..., 0::2], x[..., 1::2]
            return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)
        return x * cos + D.rotate_half(x) * sin

    def route(self, moe, x):
        """(weights, experts) (N, k) of DeepseekV3TopkRouter; its group-limited choice only if n_group > 1."""
        gate = moe.gate
        if gate.num_group > 1:
            return gate(x)[1:]
        scores = F.linear(x.float(), gate.weight.float()).sigmoid_()  # (N, E)
        idx = torch.topk(scores + gate.e_score_correction_bias, gate.top_k, dim=-1, sorted=False)[1]  # (N, k)
        weights = scores.gather(1, idx)
        if gate.norm_topk_prob:
            weights /= weights.sum(dim=-1, keepdim=True) + 1e-20
        return weights * gate.routed_scaling_factor, idx

    def mlp(self, layer: Layer, x):
        """(N, D) -> (N, D): the dense MLP, or router + routed and shared experts."""
        N = x.shape[0]
        routed = None
        if layer.moe is not None:
            weights, idx = self.route(layer.moe, x)  # (N, k), (N, k)
            if not layer.fused_experts:
                routed = layer.moe.experts(x, idx, weights)
            else:
                E = layer.moe.experts.num_experts
                combine = x.new_zeros(N, E).scatter_(1, idx, weights.to(x.dtype))  # (N, E)
        gate, up = (x @ layer.w_gate_up).chunk(2, dim=-1)  # (N, F) x2
        act = F.silu(gate).mul_(up)  # (N, F)
        if layer.fused_experts:
            act[:, : E * layer.moe.experts.intermediate_dim].view(N, E, -1).mul_(combine[:, :, None])
        out = act @ layer.w_down  # (N, D)
        return out if routed is None else out + routed

    def step(self, tokens, pos, cache, mask, cos, sin):
        """Last-position logits (B, V) for `tokens` (B, S) at positions `pos` (B, S), whose latents
        are written to cache columns C-S .. C-1, attending under the additive `mask` (B, S or 1, C)."""
        H, r, dr = self.H, self.r, self.dr
        (B, S), C = tokens.shape, mask.shape[-1]
        h = self.embed[tokens.flatten()]  # (B*S, D)
        c, s = cos[pos][:, :, None], sin[pos][:, :, None]  # (B, S, 1, dr)
        if S > 1:  # each query row of a head gets its token's mask row
            mask = mask[:, :, None].expand(B, S, H, C).reshape(B, S * H, C)
        for layer, kv in zip(self.layers, cache):
            x = F.rms_norm(h, h.shape[-1:], layer.in_norm, self.eps)
            y = (x @ layer.w_in).view(B, S, -1)  # (B, S, H*r + (H+1)*dr + r)
            rot = self.rotate(y[..., H * r : H * r + (H + 1) * dr].view(B, S, H + 1, dr), c, s)  # (B, S, H+1, dr)
            kv[:, C - S : C, :r] = F.rms_norm(y[..., -r:], (r,), layer.kv_norm, self.eps)
            kv[:, C - S : C, r:] = rot[:, :, H]
            q = torch.cat([y[..., : H * r].view(B, S, H, r), rot[:, :, :H]], dim=-1).view(B, S * H, r + dr)
            keys = kv[:, :C]  # (B, C, r+dr)
            scores = torch.baddbmm(mask, q, keys.transpose(1, 2))  # (B, S*H, C)
            out = torch.bmm(scores.softmax(-1), keys[..., :r])  # (B, S*H, r)
            h = h + out.view(B * S, H * r) @ layer.w_out
            h = h + self.mlp(layer, F.rms_norm(h, h.shape[-1:], layer.post_norm, self.eps))
        last = h.view(B, S, -1)[:, -1]  # (B, D)
        return F.rms_norm(last, last.shape[-1:], self.norm, self.eps) @ self.lm_head  # (B, V)


@dataclass
class Sampling:
    """What a token is drawn with: `generate`'s processors in its order, and the stop ids."""

    temperature: float  # 0 = greedy
    top_k: int
    top_p: float
    stop_ids: torch.Tensor  # (S,) long
    min_new_tokens: int


def draw(logits, step: int, how: Sampling, gen: torch.Generator | None):
    """(tokens (B,), log-probs (B,)) from raw logits (B, V); log-probs of log_softmax(logits / T)."""
    banned = how.stop_ids if step < how.min_new_tokens else None
    tokens, z = draw_tokens(logits, how.temperature, how.top_p, how.top_k, uniform_from(gen), banned)  # (B,), (B, V)
    return tokens, z.gather(1, tokens[:, None])[:, 0] - torch.logsumexp(z, dim=-1)


def prompt_mask(attention_mask, length: int):
    """Additive (B, P, L) mask of the prompt's causal self-attention; a padding position sees itself
    only, so its (unused) latent stays finite."""
    B, P = attention_mask.shape
    causal = torch.ones(P, P, dtype=torch.bool, device=attention_mask.device).tril()  # (P, P)
    keep = causal & attention_mask.bool()[:, None, :]  # (B, P, P)
    keep |= torch.eye(P, dtype=torch.bool, device=attention_mask.device)
    mask = torch.full((B, P, length), float("-inf"), device=attention_mask.device)
    mask[:, :, :P].masked_fill_(keep, 0.0)
    return mask


@torch.inference_mode()
def sample(model, input_ids, attention_mask, max_new_tokens: int, how: Sampling, pad_id: int,
           gen: torch.Generator | None = None):
    """Tokens (B, T) and their log-probs (B, T) for left-padded prompts. A row's entries after its first
    stop id are arbitrary (it may keep decoding until the batch is compacted); `pad_id` fills the rest."""
    dec = Decoder(model)
    device = dec.embed.device
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    how = replace(how, stop_ids=how.stop_ids.to(device))
    (B, P), T = input_ids.shape, max_new_tokens
    dtype = dec.embed.dtype
    cache = [torch.empty(B, P + T, dec.r + dec.dr, dtype=dtype, device=device) for _ in dec.layers]
    cos, sin = dec.rope_table(P + T, cache[0])
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # (B, P) counted over real tokens, as in training
    logits = dec.step(input_ids, positions, cache, prompt_mask(attention_mask, P).to(dtype), cos, sin).float()
    mask = torch.zeros(B, 1, P + T, dtype=dtype, device=device)  # additive: -inf on prompt padding
    mask[:, 0, :P].masked_fill_(attention_mask == 0, float("-inf"))
    pos = attention_mask.sum(-1, keepdim=True)  # (B, 1) position of the next token
    tokens = torch.full((B, T), pad_id, device=device)  # (B, T)
    logps = torch.zeros(B, T, device=device)  # (B, T)
    rows = torch.arange(B, device=device)  # batch row -> output row
    done = torch.zeros(B, dtype=torch.bool, device=device)
    for t in range(T):
        tok, lp = draw(logits, t, how, gen)
        tokens[rows, t], logps[rows, t] = tok, lp
        done |= torch.isin(tok, how.stop_ids)
        n_done = int(done.sum())
        if n_done == len(rows) or t == T - 1:
            break
        if n_done and n_done * 8 >= len(rows):  # drop finished rows: less work for every later token
            keep = (~done).nonzero()[:, 0]
            rows, tok, pos, mask, done = rows[keep], tok[keep], pos[keep], mask[keep], done[keep]
            cache = [kv[keep] for kv in cache]
        logits = dec.step(tok[:, None], pos, cache, mask[:, :, : P + t + 1], cos, sin).float()
        pos = pos + 1
    return tokens, logps
