"""Data parallelism on one machine, for the pretrain stage: `processes - 1` helper processes each take a
share of every step's micro-batches and hand back its gradient, so a step keeps every core busy.

The helpers compute on the trainer's own parameters, moved to shared memory: no weights are copied, since
the trainer changes them only after every helper has handed back its gradient. A helper rebuilds the
step's documents itself (a pure function of seed and step; each side builds the next step's while the
other finishes), takes its run of the length-sorted micro-batches (`split_pieces`: contiguous runs of
about equal padded area, the shortest to the trainer), and writes its gradient to a shared buffer. The
trainer adds the helpers' gradients to its own in rank order, so a run is deterministic for a given
number of processes, and resumes bit for bit. Each process counts the load of every MoE expert and the
trainer sums the counts, so DeepSeek-V3's bias update sees the whole batch.

Departure from DDP (torch.distributed): no process group and no all-reduce. One trainer owns the
optimizer, the schedule and the checkpoints; helpers only compute gradients. With one process the stage
is the plain loop, micro-batch after micro-batch; with more, the float sum runs in another order, so the
weights differ from one process's in the last bits.
"""

from __future__ import annotations

import itertools
import os
import traceback
import weakref

import torch

from r1zero.errors import UserError
from r1zero.train.corpus import corpus_batch, length_buckets, lm_batch
from r1zero.train.moe_balance import ExpertLoadBalancer
from r1zero.train.pipelined import next_request, next_result


def step_pieces(tokenizer, cfg, seed: int, step: int) -> tuple[list[dict], torch.Tensor]:
    """(the length-sorted micro-batches of step `step`, the batch's count of labelled tokens)."""
    batch = lm_batch(tokenizer, corpus_batch(cfg, seed, step), cfg.loss_on_prompt)
    n_labels = (batch["labels"][:, 1:] != -100).sum()  # the loss averages over these
    return list(length_buckets(batch, cfg.length_buckets)), n_labels


def backward_pieces(model, pieces: list[dict], n_labels: torch.Tensor) -> torch.Tensor:
    """Backward of each micro-batch's share of the batch's loss, one after the other; their summed loss."""
    loss = torch.zeros(())
    device = next(model.parameters()).device
    for micro in pieces:
        micro = {k: v.to(device) for k, v in micro.items()}
        micro_loss = model(**micro, num_items_in_batch=n_labels).loss
        micro_loss.backward()
        loss += micro_loss.detach().cpu()
    return loss


def split_pieces(pieces: list[dict], world: int) -> list[list[dict]]:
    """The micro-batches in `world` contiguous runs of about equal padded area (rows x width, their cost),
    one per process, the first (the trainer's) holding the shortest; a run is empty when pieces are fewer."""
    cumulative = list(itertools.accumulate((p["input_ids"].numel() for p in pieces), initial=0))
    bounds = [0]
    for r in range(1, world):
        target = cumulative[-1] * r / world
        bounds.append(min(range(bounds[-1], len(pieces) + 1), key=lambda j: abs(cumulative[j] - target)))
    bounds.append(len(pieces))
    return [pieces[a:b] for a, b in itertools.pairwise(bounds)]


def shared_tensors(model, balancer: ExpertLoadBalancer) -> list[torch.Tensor]:
    """What a helper computes with: the parameters, then the routing biases the balancer moves."""
    return list(model.parameters()) + [r.e_score_correction_bias for r in balancer.routers]


class GradientHelpers:
    """`processes - 1` spawned helpers: `start(step)` sets them to work; `add_to(loss)` adds their gradients
    and expert loads to the trainer's and returns the summed loss."""

    def __init__(self, processes: int, model, balancer: ExpertLoadBalancer, cfg, seed: int, model_dir, threads: int):
        if next(model.parameters()).device.type != "cpu":
            raise UserError(f"pretrain.processes: {processes} shares memory between CPU processes; "
                            "on an accelerator set processes: 1")
        self.world, self.balancer = processes, balancer
        self.params = list(model.parameters())
        model.share_memory()  # in place: the optimizer keeps the same tensors
        for bias in shared_tensors(model, balancer)[len(self.params):]:
            bias.share_memory_()
        size = sum(p.numel() for p in self.params)
        mp = torch.multiprocessing.get_context("spawn")
        self.buffers = [torch.zeros(size).share_memory_() for _ in range(processes - 1)]
        self.requests = [mp.Queue() for _ in range(processes - 1)]
        self.results = mp.Queue()
        self.helpers = [mp.Process(target=serve_pieces, daemon=True, name=f"pretrain-helper-{rank}",
                                   args=(rank, processes, cfg, seed, str(model_dir), shared_tensors(model, balancer),
                                         self.buffers[rank - 1], self.requests[rank - 1], self.results,
                                         os.getpid(), threads))
                        for rank in range(1, processes)]
        for helper in self.helpers:
            helper.start()
        self.stop_when_gone = weakref.finalize(self, stop_all, self.requests)

    def start(self, step: int) -> None:
        for q in self.requests:
            q.put(("step", step))

    def add_to(self, loss: torch.Tensor) -> torch.Tensor:
        """Wait for every helper, add their gradients (in rank order) and expert loads; the summed loss."""
        done = {}
        while len(done) < len(self.helpers):
            rank, helper_loss, has_grad, counts = self.receive()
            done[rank] = (helper_loss, has_grad, counts)
        for rank in sorted(done):
            helper_loss, has_grad, counts = done[rank]
            offset = 0
            for p, has in zip(self.params, has_grad):
                n = p.numel()
                if has:
                    g = self.buffers[rank - 1][offset : offset + n].view_as(p)
                    p.grad = g.clone() if p.grad is None else p.grad.add_(g)
                offset += n
            for mine, theirs in zip(self.balancer.counts, counts):
                mine += torch.tensor(theirs)
            loss = loss + helper_loss
        return loss

    def receive(self) -> tuple:
        return next_result(self.results, lambda: all(h.is_alive() for h in self.helpers), lambda: "a pretrain "
                           f"helper stopped without a word (exit codes {[h.exitcode for h in self.helpers]})")[1:]

    def close(self) -> None:
        self.stop_when_gone.detach()
        stop_all(self.requests)
        for helper in self.helpers:
            helper.join(timeout=30)
            if helper.is_alive():
                helper.terminate()
                helper.join()


def stop_all(requests) -> None:
    for q in requests:
        q.put(("stop",))


def serve_pieces(rank: int, world: int, cfg, seed: int, model_dir: str, tensors: list[torch.Tensor],
                 buffer: torch.Tensor, requests, results, parent_pid: int, threads: int) -> None:
    """A helper's loop: for each step, the gradient of its run of the micro-batches, into `buffer`."""
    try:
        from r1zero.models.io import load_model, load_tokenizer

        torch.set_num_threads(threads)
        model, tokenizer = load_model(model_dir), load_tokenizer(model_dir)
        model.train()
        balancer = ExpertLoadBalancer(model, gamma=0.0)  # counts only: the trainer moves the biases
        for mine, shared in zip(shared_tensors(model, balancer), tensors, strict=True):
            mine.data = shared
        params = list(model.parameters())
        upcoming = None  # (step, its pieces, its label count), built while the trainer updates
        while (request := next_request(requests, parent_pid))[0] != "stop":
            step = request[1]
            if upcoming is None or upcoming[0] != step:  # the first step, or a resumed run's
                upcoming = (step, *step_pieces(tokenizer, cfg, seed, step))
            _, pieces, n_labels = upcoming
            loss = backward_pieces(model, split_pieces(pieces, world)[rank], n_labels)
            offset, has_grad = 0, []
            for p in params:
                n = p.numel()
                has_grad.append(p.grad is not None)
                if p.grad is not None:
                    buffer[offset : offset + n].copy_(p.grad.flatten())
                    p.grad = None
                offset += n
            results.put(("grads", rank, loss.item(), has_grad, [c.tolist() for c in balancer.counts]))
            balancer.reset()
            upcoming = (step + 1, *step_pieces(tokenizer, cfg, seed, step + 1))
    except UserError as e:
        results.put(("error", str(e), True))
    except BaseException:  # noqa: BLE001 - whatever stops a helper reaches the trainer as text
        results.put(("error", f"pretrain helper {rank} failed:\n" + traceback.format_exc(), False))
