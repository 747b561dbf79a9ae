"""From a validated request to generated choices: prompts, limits, the engine and budget forcing.

A request becomes a `Plan` (prompt ids, n, max_tokens, sampling settings) and then a `Job`: its
`n * len(prompts)` sequences go to the engine, and their events come back on one asyncio queue
(choice index `prompt_i * n + j`, as OpenAI numbers the choices of a multi-prompt completion).
A seeded request gives choice k the seed `seed + k`, so its n choices differ.

A request with a thinking budget runs `r1zero.eval.inference.budget_forced_generate` (s1 budget
forcing) in a worker thread instead of the engine: it is neither batched with other requests nor
streamed token by token (a streaming client gets the whole reply in one delta when it is done).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from r1zero.serve.decoding import StopText
from r1zero.serve.engine import Engine, EngineFull, Event, Sequence
from r1zero.serve.protocol import APIError, CommonRequest
from r1zero.serve.reasoning import prompt_opens_thinking


@dataclass
class Plan:
    """What one request asks for, checked against the model's context."""

    request: CommonRequest
    prompts: list[list[int]]  # token ids of each prompt
    max_tokens: int
    starts_in_think: bool = False  # the (chat) prompt opened `<think>` for the model
    tools: bool = False  # the model may call tools: generation stops at `</tool_call>`

    @property
    def count(self) -> int:
        return len(self.prompts) * self.request.n

    @property
    def budget(self) -> bool:
        return self.request.thinking_budget is not None or self.request.min_thinking_tokens > 0


class Job:
    """The sequences of one request and the queue their events come back on."""

    def __init__(self, count: int):
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[tuple[int, Event]] = asyncio.Queue()
        self.count, self.sequences = count, []

    def sink(self, index: int):
        """A callback the engine thread may call: it hands the event to the event loop."""
        return lambda event: self.loop.call_soon_threadsafe(self.queue.put_nowait, (index, event))

    def cancel(self) -> None:
        for s in self.sequences:
            s.cancel()

    async def events(self) -> AsyncIterator[list[tuple[int, Event]]]:
        """Events as they come, several at a time when several are waiting, until every choice ends."""
        left = self.count
        while left:
            batch = [await self.queue.get()]
            while not self.queue.empty():
                batch.append(self.queue.get_nowait())
            left -= sum(1 for _, e in batch if e.finish_reason)
            yield batch


def render_chat(tokenizer, template: str, messages: list[dict], tools: list[dict] | None = None,
                with_tools: bool = False) -> tuple[list[int], bool]:
    """Token ids of a conversation under a prompt template (r1zero.tasks.templates), and whether the
    rendered prompt opens `<think>` for the model. A template that cannot render it raises UserError.
    `with_tools` (tools offered, or calls in the history) renders with the tokenizer's own tool-aware
    chat template, passing `tools` (OpenAI function-tool descriptions)."""
    from r1zero.errors import UserError
    from r1zero.tasks.templates import TEMPLATES
    from r1zero.tools.template import supports_tools
    from r1zero.types import Example

    role = {"developer": "system"}
    messages = [{**m, "role": role.get(m["role"], m["role"])} for m in messages]
    if with_tools:
        if template != "chat" or not supports_tools(tokenizer):
            raise UserError(f"tool calls need a chat template that renders them (this server uses template "
                            f"{template!r}{'' if template != 'chat' else ' and the model folder has none'})")
        text = tokenizer.apply_chat_template(messages, tools=tools or None, add_generation_prompt=True, tokenize=False)
        return tokenizer(text, add_special_tokens=False)["input_ids"], prompt_opens_thinking(text)
    text = TEMPLATES.get(template)(Example(prompt=messages, answer=""), tokenizer)
    return tokenizer(text, add_special_tokens=False)["input_ids"], prompt_opens_thinking(text)


def plan_request(request: CommonRequest, prompts: list[list[int]], context: int, default_max_tokens: int,
                 max_n: int) -> Plan:
    """Check n, the stop list and the context length; choose max_tokens when the request has none."""
    if request.n > max_n:
        raise APIError(400, f"n: at most {max_n} choices per request (got {request.n})", "n")
    request.stop_list()
    longest = max(map(len, prompts))
    asked = getattr(request, "max_completion_tokens", None) or request.max_tokens
    if longest >= context or (asked and longest + asked > context):
        raise APIError(400, f"This model's maximum context length is {context} tokens. However, you requested "
                            f"{longest + (asked or 0)} tokens ({longest} in the prompt, {asked or 0} in the "
                            f"completion). Please reduce the prompt or the completion length.",
                       "messages" if hasattr(request, "messages") else "prompt", "context_length_exceeded")
    return Plan(request, prompts, asked or min(default_max_tokens, context - longest))


class Generator:
    """Starts jobs: sequences on the engine, or budget forcing on a worker thread."""

    def __init__(self, model, tokenizer, engine: Engine):
        self.model, self.engine = model, engine
        self.tokenizer = copy.deepcopy(tokenizer)  # the worker thread's own (fast tokenizers are not thread-safe)
        self.answer_stop = [t for t in ("</answer>",) if len(tokenizer(t, add_special_tokens=False)["input_ids"]) == 1]
        self.workers = ThreadPoolExecutor(max_workers=1, thread_name_prefix="r1zero-budget")
        self.budget_jobs = 0

    def start(self, plan: Plan) -> Job:
        job = Job(plan.count)
        req, n = plan.request, plan.request.n
        if plan.budget:
            self._start_budget(plan, job)
            return job
        job.sequences = [
            Sequence(p, job.sink(i * n + j), max_new_tokens=plan.max_tokens, temperature=req.temperature,
                     top_p=req.top_p, top_k=req.top_k, stop=req.stop_list() + (["</tool_call>"] if plan.tools else []),
                     seed=None if req.seed is None else req.seed + i * n + j)
            for i, p in enumerate(plan.prompts) for j in range(n)]
        try:
            self.engine.submit(job.sequences)
        except EngineFull as e:
            raise APIError(429, str(e), code="server_busy", kind="rate_limit_error") from None
        return job

    def _start_budget(self, plan: Plan, job: Job) -> None:
        try:
            from r1zero.eval.inference import budget_forced_generate
        except ImportError:
            raise APIError(400, "thinking budget unavailable: this installation has no budget forcing "
                                "(r1zero.eval.inference)", "thinking_budget") from None
        if len(self.tokenizer("</think>", add_special_tokens=False)["input_ids"]) != 1:
            raise APIError(400, "thinking budget unavailable: this model's tokenizer has no one-token </think>",
                           "thinking_budget")
        if self.budget_jobs >= self.engine.max_batch:
            raise APIError(429, "too many thinking-budget requests in flight; retry later", code="server_busy",
                           kind="rate_limit_error")
        self.budget_jobs += 1
        future = self.workers.submit(self._run_budget, budget_forced_generate, plan, job)
        future.add_done_callback(lambda _: job.loop.call_soon_threadsafe(self._budget_done))

    def _budget_done(self) -> None:
        self.budget_jobs -= 1

    def _run_budget(self, budget_forced_generate, plan: Plan, job: Job) -> None:
        from r1zero.rollout.base import SamplingParams

        req, n = plan.request, plan.request.n
        params = SamplingParams(max_new_tokens=plan.max_tokens, temperature=req.temperature, top_p=req.top_p,
                                top_k=req.top_k, stop=self.answer_stop, seed=req.seed)
        try:
            rollouts = budget_forced_generate(self.model, self.tokenizer, [p for p in plan.prompts for _ in range(n)],
                                              params, req.min_thinking_tokens, req.thinking_budget)
        except Exception as e:  # noqa: BLE001 - reported to the client as a server error
            for k in range(plan.count):
                job.sink(k)(Event("", 0, "error", [], f"budget forcing failed: {type(e).__name__}: {e}"))
            return
        for k, r in enumerate(rollouts):
            text = StopText(req.stop_list())
            text.push(r.text)
            reason = "stop" if text.stopped else r.finish_reason
            job.sink(k)(Event(text.text, len(r.completion_ids), reason, list(r.completion_ids)))

    def close(self) -> None:
        self.workers.shutdown(wait=False, cancel_futures=True)
        self.engine.close()


async def collect(job: Job) -> list[tuple[str, Event]]:
    """Every choice's whole text and last event; a failed generation is a 500."""
    texts, finals = [""] * job.count, [None] * job.count
    async for batch in job.events():
        for i, event in batch:
            texts[i] += event.text
            if event.finish_reason:
                finals[i] = event
    for event in finals:
        if event.finish_reason == "error":
            raise APIError(500, event.error or "generation failed", kind="server_error")
    return list(zip(texts, finals))


def reasoning_token_count(token_ids: list[int], think_close_id: int | None, has_reasoning: bool) -> int:
    """Tokens up to and including `</think>` (all of them while it never came); 0 without reasoning."""
    if not has_reasoning:
        return 0
    if think_close_id is not None and think_close_id in token_ids:
        return token_ids.index(think_close_id) + 1
    return len(token_ids)

