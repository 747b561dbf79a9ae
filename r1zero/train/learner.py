"""Learners: what turns a rollout batch into optimizer steps. The RL loop sees one interface.

`LocalLearner` is the in-process update: one policy, one AdamW, one LR schedule. Its Ray form,
`RayLearnerGroup` (r1zero.distributed.learner_group), runs `learners` Ray actors, each a
`LocalLearner` of rank r in one torch.distributed group (gloo on CPU, NCCL on GPU), whose
collectives are in r1zero.distributed.ranks. Both offer `step(batch) -> metrics`, `policy_state()` (the weights samplers
need), `checkpoint_objects()` (model / optimizer / scheduler, each with state_dict and
load_state_dict, so one checkpoint format serves both), `final_model()`, `last_lr()`, `close()`.

Data parallelism. Every rank gets the whole batch and takes rows r, r + W, ... of each
micro-batch; its loss is scaled by W * (its share of the micro-batch's normaliser, `shard_share`),
so the mean of the ranks' gradients is the single-process gradient for token-mean, seq-mean and
constant aggregation alike, up to float summation order. Departures from torch's DDP: gradients are
all-reduced by hand, once per minibatch after accumulation, because MoE experts that no token
reached and frozen LoRA bases have no gradient, which DDP's hooks reject unless told to search for
unused parameters; a parameter with no gradient on any rank keeps none, as in one process (AdamW
then skips it). `strategy: fsdp2` shards each decoder layer and the root with `fully_shard` and
lets FSDP reduce-scatter the gradients instead. Metrics are means over ranks (maxima for *_max).

TIS (`tis_cap > 0`): before the epochs, a no-grad forward gives the trainer's log-probs, which
become old_logp; each token's surrogate is weighted by min(exp(trainer - sampler), cap). The
reference log-probs (beta > 0) are likewise computed once per batch, not once per piece and epoch.
Decoupled PPO (a loss with `decoupled`, e.g. `decoupled_ppo`): the same forward gives the proximal
log-probs pi_prox, passed to the loss as `prox_logp` while old_logp stays the sampler's; with TIS on
as well, old_logp already is the trainer's, so pi_prox = old_logp and the TIS weight is the (truncated)
behaviour weight.

Rows whose advantage is exactly 0 (a group with equal rewards; `skip_zero_advantage`, with beta 0 and
per-completion advantages) are left out of the forward and backward: their loss term is 0 and the
normaliser (`shard_share` over the whole minibatch) still counts them, so the gradient is unchanged; a
micro-batch with fewer such rows than ranks runs whole, so every rank runs the same passes and an all-zero
step still hands AdamW (zero) gradients.

Every rank runs the same number of forward passes, which FSDP's collectives need: minibatches,
micro-steps and the number of length pieces are functions of the global batch, not of a rank's rows.
PPO with a critic (an advantage estimator with `token_advantages`, i.e. `gae`): a Critic (r1zero.train.critic)
with its own AdamW on the policy's schedule gives values for the whole batch once, before the update; GAE turns
them and the per-completion rewards into per-token advantages and returns, and each piece's clipped value loss
is backpropagated beside its policy loss (token mean over the minibatch); both optimizers step together.

The LR schedule advances once per optimizer step (`steps x num_iterations x minibatches` in all), and
the minibatch shuffle is seeded by (seed, step), so each step draws its own permutation.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

from r1zero.algo import (
    ADVANTAGES,
    LOSSES,
    advantage_config,
    explained_variance,
    loss_config,
    tis_weights,
    value_loss,
)
from r1zero.distributed.digest import weight_digest
from r1zero.distributed.ranks import average_gradients, mean_over_ranks, shard_fully
from r1zero.errors import UserError
from r1zero.models.io import load_model, with_lora
from r1zero.train.critic import Critic
from r1zero.train.rollout_batch import RolloutBatch, completion_logprobs
from r1zero.train.scaffold import adamw, optimizer_step


def setup_policy(cfg, model_dir, device: str = "cpu"):
    """The trainable policy on `device`: the model folder, with LoRA adapters and checkpointing as `cfg` says."""
    model = load_model(model_dir, device=device)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if cfg.lora:
        model = with_lora(model, cfg.lora_rank, cfg.lora_alpha)
    model.train()
    return model


def reference_logprobs(cfg, ref_model, policy, batch, share_prompts: bool = True):
    """Log-probs under the reference policy: the base with adapters off (LoRA), or a frozen copy."""
    with torch.no_grad():
        if cfg.lora:
            with policy.disable_adapter():
                return completion_logprobs(policy, batch, cfg.temperature, share_prompts=share_prompts)[0]
        return completion_logprobs(ref_model, batch, cfg.temperature)[0]  # a whole copy on each rank


def shard_share(aggregation: str, whole_mask: torch.Tensor, part_mask: torch.Tensor) -> float:
    """The share of a minibatch's loss normaliser (see `losses._aggregate`) that some of its rows carry.

    whole_mask: (M, T) the minibatch's completion mask; part_mask: (m, T') the rows' (T' <= T: cut to
    their longest). Constant aggregation must divide by one width for all parts (`max_completion_length`).
    """
    if aggregation == "token_mean":
        return part_mask.sum().item() / max(whole_mask.sum().item(), 1)  # kept tokens
    return part_mask.shape[0] / whole_mask.shape[0]  # sequences (seq_mean; constant divides by N * T)


def length_pieces(mask: torch.Tensor, n: int, fewest_rows: int | None = None) -> tuple[torch.Tensor, ...]:
    """Row indices of `mask` (N, T) in pieces of similar kept length, shortest first.

    The count is what `torch.chunk` gives for `fewest_rows` (default N) rows in `n` pieces, so ranks
    holding 9 and 8 rows of one micro-batch (fewest_rows = 8) cut the same number of pieces, all non-empty.
    """
    order = mask.sum(-1).argsort(stable=True)  # (N,)
    count = len(torch.arange(len(order) if fewest_rows is None else fewest_rows).chunk(max(n, 1)))
    pieces = order.chunk(max(n, 1))
    return pieces if len(pieces) == count else order.tensor_split(count)


class LocalLearner:
    """The policy, its optimizer and schedule, and the update; rank `rank` of `world` (1 = alone)."""

    def __init__(self, cfg, model, model_dir, rank: int = 0, world: int = 1, strategy: str = "ddp", seed: int = 0):
        self.cfg, self.model, self.rank, self.world, self.strategy = cfg, model, rank, world, strategy
        self.seed, self.device = seed, next(model.parameters()).device
        self.share_prompts = not (strategy == "fsdp2" and world > 1)  # one forward per piece under FSDP
        LOSSES.get(cfg.loss)  # an unknown loss fails here, before any sampling (PieceWork looks it up by name)
        self.loss_cfg = loss_config(cfg.loss, **cfg.loss_options)
        self.helper, self.helper_pieces = None, 0  # see `lend_pieces`
        self.ref_model = (load_model(model_dir, device=str(self.device)) if self.loss_cfg.beta > 0 and not cfg.lora
                          else None)
        if strategy == "fsdp2" and world > 1:
            shard_fully(model)
        total = cfg.steps * cfg.num_iterations * cfg.minibatches  # optimizer steps of the whole run
        schedule = (max(cfg.warmup_steps, 1), total, 0.1 if cfg.lr_schedule == "cosine" else 1.0)
        self.optimizer, self.scheduler = adamw(model, cfg.lr, cfg.weight_decay, *schedule)
        # An estimator with per-token advantages (gae) needs a critic, with its own AdamW on the same schedule.
        self.token_advantages = getattr(ADVANTAGES.get(cfg.advantage), "token_advantages", None)
        self.critic = None
        if self.token_advantages:
            if world > 1:
                raise UserError(f"advantage {cfg.advantage!r} trains a critic, which runs in one learner; "
                                "set learners: 1")
            self.adv_cfg = advantage_config(**cfg.advantage_options)
            self.critic = Critic(model_dir, str(self.device), cfg.gradient_checkpointing)
            self.critic_optimizer, self.critic_scheduler = adamw(self.critic, cfg.critic_lr, cfg.weight_decay,
                                                                 *schedule)

    def lend_pieces(self, helper, pieces: int) -> None:
        """Have `helper` (the rollout worker: `send_gradient`, `receive_gradient`) compute the gradient of each
        micro-step's `pieces` shortest pieces, on weights equal to this policy's before the step."""
        self.helper, self.helper_pieces = helper, pieces

    def step(self, batch: RolloutBatch, step: int = 0) -> dict:
        """`num_iterations` epochs over `minibatches` shuffled minibatches, each `grad_accum` micro-steps.

        A micro-step runs this rank's rows of it in `length_buckets` pieces of similar completion length,
        each cut to its longest row. Each piece's loss is weighted by its share of the minibatch's loss
        normaliser (`shard_share`), so the summed gradient is the whole minibatch's, whatever the split
        into micro-steps, pieces and ranks (TRL instead averages per-micro-step losses under token_mean).
        `step` (the RL step) seeds the minibatch shuffle.
        """
        cfg = self.cfg
        batch = batch_to(batch, self.device)
        batch, tis, tis_metrics = self.with_trainer_old_logp(batch) if cfg.tis_cap > 0 else (batch, None, {})
        prox = self.trainer_logprobs(batch) if self.loss_cfg.decoupled and tis is None else None  # (N, T)
        token_inputs = {k: v for k, v in (("token_weight", tis), ("prox_logp", prox)) if v is not None}
        ref_logp = self.reference_logprobs(batch) if self.loss_cfg.beta > 0 else None  # (N, T)
        batch, targets, critic_metrics = self.with_token_advantages(batch) if self.critic else (batch, None, {})
        kept = batch.completion_mask.cpu()  # (N, T) row bookkeeping stays on the CPU
        loss_cfg = self.loss_cfg
        if loss_cfg.aggregation == "constant" and loss_cfg.max_completion_length is None:
            loss_cfg = replace(loss_cfg, max_completion_length=batch.completion_mask.shape[1])  # not a piece's width
        skip = self.skips_zero_advantage(batch)
        sums: dict[str, float] = {}
        n_steps = 0
        # One minibatch: the order sets only the float summation order, and the generator seeded by the batch
        # length is kept so that such runs (the tiny-zero recipe) reproduce earlier ones bit for bit.
        gen = torch.Generator().manual_seed(len(batch) if cfg.minibatches == 1 else self.seed * 1_000_003 + step)
        for _ in range(cfg.num_iterations):
            order = torch.randperm(len(batch), generator=gen)
            for mb_idx in order.tensor_split(min(cfg.minibatches, len(batch))):
                minibatch_mask = batch.completion_mask[mb_idx]  # (M, T): the normaliser's tokens and rows
                micro_steps = [self.rows_to_run(micro_idx, batch, skip)
                               for micro_idx in mb_idx.tensor_split(min(cfg.grad_accum, len(mb_idx)))]
                # Metrics are means over the rows run: a piece's weight over the share of the minibatch they carry.
                ran = shard_share(loss_cfg.aggregation, minibatch_mask, batch.completion_mask[torch.cat(micro_steps)])
                for micro_idx in micro_steps:
                    if len(micro_idx) < self.world:  # known to every rank alike: all of them stop
                        raise UserError(f"a micro-batch of {len(micro_idx)} rows cannot be split over {self.world} "
                                        f"learners; lower minibatches or grad_accum, or use fewer learners")
                    mine = micro_idx[self.rank :: self.world]  # this rank's rows of the micro-batch
                    pieces = length_pieces(kept[mine], cfg.length_buckets, len(micro_idx) // self.world)
                    # The rollout worker (`worker_pieces`) takes the shortest pieces: it samples first.
                    theirs = [self.piece_work(batch, token_inputs, ref_logp, mine[rows], minibatch_mask, loss_cfg)
                              for rows in pieces[: self.helper_pieces]]
                    for work in theirs:
                        self.helper.send_gradient(work)
                    for rows in pieces[len(theirs) :]:
                        weight, metrics = self.piece_backward(batch, token_inputs, ref_logp, mine[rows],
                                                              minibatch_mask, loss_cfg)
                        if self.critic:
                            metrics |= self.critic_backward(batch, targets, mine[rows], minibatch_mask)
                        add_metrics(sums, metrics, weight, ran)
                    for work in theirs:  # added after this process's own, in piece order: deterministic
                        grads, metrics = self.helper.receive_gradient()
                        add_gradients(self.model, grads)
                        add_metrics(sums, metrics, work.weight, ran)
                if self.world > 1 and self.strategy == "ddp":
                    average_gradients(self.model, self.world)
                grad_norm = optimizer_step(self.model, self.optimizer, self.scheduler, cfg.grad_clip)
                sums["grad_norm"] = sums.get("grad_norm", 0.0) + grad_norm.item()
                if self.critic:
                    value_norm = optimizer_step(self.critic, self.critic_optimizer, self.critic_scheduler,
                                                cfg.grad_clip)
                    sums["value_grad_norm"] = sums.get("value_grad_norm", 0.0) + value_norm.item()
                n_steps += 1
        means = {k: v if k.endswith("_max") else v / n_steps for k, v in sums.items()}
        means |= tis_metrics | critic_metrics
        return mean_over_ranks(means) if self.world > 1 else means

    def skips_zero_advantage(self, batch: RolloutBatch) -> bool:
        """Whether rows with advantage 0 can be left out of the update: their loss then has no gradient (every
        surrogate is rho x A; no KL term, beta = 0; one advantage per row, so no critic)."""
        return self.cfg.skip_zero_advantage and batch.adv.ndim == 1 and self.loss_cfg.beta == 0

    def rows_to_run(self, micro_idx: torch.Tensor, batch: RolloutBatch, skip: bool) -> torch.Tensor:
        """The rows of a micro-batch whose forward and backward run: with `skip`, those with a nonzero advantage,
        unless fewer than one per rank (then all of them: every rank runs the same passes, and a minibatch
        still gets gradients, zeros, so AdamW steps as it would have). The gradient is the same either way: a
        left-out row's term is exactly 0 (advantages of equal-reward groups are exact zeros), and the loss
        normaliser still counts its tokens."""
        if not skip:
            return micro_idx
        nonzero = micro_idx[batch.adv[micro_idx].cpu() != 0]
        return nonzero if len(nonzero) >= self.world else micro_idx

    def piece_backward(self, batch: RolloutBatch, token_inputs: dict, ref_logp, idx: torch.Tensor,
                       minibatch_mask: torch.Tensor, loss_cfg) -> tuple[float, dict[str, float]]:
        """Backward of rows `idx`' loss, weighted by their share of the minibatch's normaliser: (weight, metrics)."""
        work = self.piece_work(batch, token_inputs, ref_logp, idx, minibatch_mask, loss_cfg)
        return work.weight, work.backward(self.model)

    def piece_work(self, batch: RolloutBatch, token_inputs: dict, ref_logp, idx: torch.Tensor,
                   minibatch_mask: torch.Tensor, loss_cfg) -> PieceWork:
        """Rows `idx`' loss inputs, cut to their longest completion, and their weight in the minibatch's loss."""
        piece = batch.select(idx).trimmed()
        T = piece.completion_mask.shape[1]
        # The ranks' gradients are averaged, hence `world` times this rank's share.
        weight = self.world * shard_share(loss_cfg.aggregation, minibatch_mask, piece.completion_mask)
        return PieceWork(piece, {k: v[idx, :T] for k, v in token_inputs.items()},  # (N, T) -> (n, T)
                         None if ref_logp is None else ref_logp[idx, :T], weight, self.cfg.loss, loss_cfg,
                         self.cfg.temperature, self.share_prompts)

    @torch.no_grad()
    def with_token_advantages(self, batch: RolloutBatch) -> tuple[RolloutBatch, tuple, dict]:
        """(batch with per-token advantages (N, T) in place of its per-completion rewards, (old values, returns)
        (N, T) each, the critic's explained variance): the critic's values before this step's updates, and
        GAE over them."""
        old_values = torch.cat([self.critic(batch.select(idx)) for idx in self.chunks(batch)])  # (N, T)
        adv, returns = self.token_advantages(batch.adv, old_values, batch.completion_mask, self.adv_cfg)
        metrics = {"explained_variance": explained_variance(old_values, returns, batch.completion_mask)}
        return replace(batch, adv=adv), (old_values, returns), metrics

    def critic_backward(self, batch: RolloutBatch, targets, idx: torch.Tensor, minibatch_mask: torch.Tensor) -> dict:
        """Backward of rows `idx`' clipped value loss, token mean over the minibatch (weighted by their share of
        its kept tokens), times vf_coef; the value metrics."""
        piece = batch.select(idx).trimmed()
        T = piece.completion_mask.shape[1]
        old_values, returns = (t[idx, :T] for t in targets)  # (n, T) each
        loss, metrics = value_loss(self.critic(piece), old_values, returns, piece.completion_mask,
                                   self.cfg.cliprange_value)
        (loss * self.cfg.vf_coef * shard_share("token_mean", minibatch_mask, piece.completion_mask)).backward()
        return metrics

    def chunks(self, batch: RolloutBatch) -> tuple[torch.Tensor, ...]:
        """Row indices of the batch in micro-batch-sized chunks, for no-grad passes over all of it."""
        return torch.arange(len(batch)).split(max(len(batch) // (self.cfg.minibatches * self.cfg.grad_accum), 1))

    def reference_logprobs(self, batch: RolloutBatch) -> torch.Tensor:
        """(N, T) log-probs of the completions under the reference policy, once for the whole batch."""
        return torch.cat([reference_logprobs(self.cfg, self.ref_model, self.model, batch.select(idx), self.share_prompts)
                          for idx in self.chunks(batch)])  # (N, T)

    @torch.no_grad()
    def trainer_logprobs(self, batch: RolloutBatch) -> torch.Tensor:
        """(N, T) log-probs of the completions under this policy before the update (no grad)."""
        return torch.cat([completion_logprobs(self.model, batch.select(idx), self.cfg.temperature,
                                              share_prompts=self.share_prompts)[0]
                          for idx in self.chunks(batch)])  # (N, T)

    def with_trainer_old_logp(self, batch: RolloutBatch) -> tuple[RolloutBatch, torch.Tensor, dict]:
        """(batch with old_logp from this policy, TIS weights (N, T), their metrics)."""
        trainer = self.trainer_logprobs(batch)  # (N, T)
        tis = tis_weights(trainer, batch.old_logp, batch.completion_mask, self.cfg.tis_cap)  # (N, T)
        kept = tis[batch.completion_mask]  # (K,)
        metrics = {"tis_weight_mean": kept.mean().item() if kept.numel() else 1.0,
                   "tis_capped_frac": (kept >= self.cfg.tis_cap).float().mean().item() if kept.numel() else 0.0}
        return replace(batch, old_logp=trainer), tis, metrics

    def policy_state(self) -> dict:
        if self.strategy == "fsdp2" and self.world > 1:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

            return get_model_state_dict(self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        return self.model.state_dict()

    def checkpoint_objects(self) -> dict:
        critic = ({"critic": self.critic, "critic_optimizer": self.critic_optimizer,
                   "critic_scheduler": self.critic_scheduler} if self.critic else {})
        return {"model": self.model, "optimizer": self.optimizer, "scheduler": self.scheduler, **critic}

    def final_model(self):
        return self.model

    def last_lr(self) -> float:
        return self.scheduler.get_last_lr()[0]

    def digests(self) -> dict[str, str]:
        return {f"learner{self.rank}": weight_digest(self.policy_state())}

    def close(self) -> None:
        pass


@dataclass
class PieceWork:
    """One piece of an update: what its loss needs and its weight in the minibatch's loss. Picklable: the
    rollout worker computes some pieces' gradients (`rl.worker_pieces`)."""

    piece: RolloutBatch
    extra: dict  # per-token loss inputs (n, T): token_weight (TIS), prox_logp (decoupled PPO)
    ref: torch.Tensor | None  # (n, T) reference log-probs (beta > 0)
    weight: float
    loss: str
    loss_cfg: object
    temperature: float
    share_prompts: bool

    def backward(self, model) -> dict[str, float]:
        """Add this piece's weighted loss gradient to `model`'s; its metrics."""
        piece = self.piece
        logp, entropy = completion_logprobs(model, piece, self.temperature, with_entropy=True,
                                            share_prompts=self.share_prompts)
        loss, metrics = LOSSES.get(self.loss)(logp, piece.old_logp, self.ref, piece.adv, piece.completion_mask,
                                              self.loss_cfg, **self.extra)
        (loss * self.weight).backward()
        metrics["loss"] = loss.item()
        metrics["entropy"] = entropy[piece.completion_mask].mean().item() if piece.completion_mask.any() else 0.0
        return metrics

    def gradients(self, model) -> tuple[list[torch.Tensor | None], dict[str, float]]:
        """(this piece's gradient of each of `model`'s parameters, None where it has none; metrics), computed
        on `model` and taken off it: the rollout worker's side of `worker_pieces`."""
        params = list(model.parameters())
        for p in params:
            p.grad = None
        metrics = self.backward(model)
        grads = [p.grad for p in params]
        for p in params:
            p.grad = None
        return grads, metrics


def add_metrics(sums: dict[str, float], metrics: dict[str, float], weight: float, ran: float = 1.0) -> None:
    """Sum a piece's metrics weighted as its loss is (the minibatch's value); maxima for *_max. `ran`: the
    share of the minibatch's normaliser that the rows run carry (< 1 where zero-advantage rows were left
    out): the loss is the minibatch's (a left-out row adds 0 to it), the other metrics means over the rows run."""
    for k, v in metrics.items():
        if k.endswith("_max"):
            sums[k] = max(sums.get(k, v), v)
        else:
            sums[k] = sums.get(k, 0.0) + v * (weight if k == "loss" or not ran else weight / ran)


def add_gradients(model, grads: list[torch.Tensor | None]) -> None:
    """Add gradients computed elsewhere (`PieceWork.gradients`) to `model`'s, parameter by parameter."""
    for p, g in zip(model.parameters(), grads, strict=True):
        if g is not None:
            p.grad = g.clone() if p.grad is None else p.grad.add_(g)


def batch_to(batch: RolloutBatch, device) -> RolloutBatch:
    """The batch with every tensor on `device`."""
    moved = {f.name: getattr(batch, f.name).to(device) for f in fields(batch)
             if isinstance(getattr(batch, f.name), torch.Tensor)}
    return replace(batch, **moved)
