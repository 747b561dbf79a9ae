"""The API against a real `r1zero serve` process, through the official openai client."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

from tests.serve.conftest import ANSWER, REASONING, REPLY


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=60)


def chat_prompt_tokens(tok, content: str) -> int:
    text = tok.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False)
    return len(tok(text, add_special_tokens=False)["input_ids"])


def reply_tokens(tok, text: str) -> int:
    return len(tok(text, add_special_tokens=False)["input_ids"])


def test_chat_splits_reasoning_and_counts_tokens(client, taught_tokenizer):
    r = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hello"}], temperature=0)
    msg = r.choices[0].message
    assert (msg.reasoning_content, msg.content) == (REASONING, ANSWER)
    assert r.choices[0].finish_reason == "stop"
    # generation ends on the one-token </answer>, which counts as a completion token
    assert r.usage.prompt_tokens == chat_prompt_tokens(taught_tokenizer, "hello")
    assert r.usage.completion_tokens == reply_tokens(taught_tokenizer, REPLY)
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    think = reply_tokens(taught_tokenizer, f"<think>{REASONING}</think>")
    assert r.usage.completion_tokens_details.reasoning_tokens == think


def test_chat_streams_reasoning_then_answer(client, taught_tokenizer):
    stream = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hello"}],
                                            temperature=0, stream=True, stream_options={"include_usage": True})
    kinds, reasoning, content, finish, usage = [], "", "", None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            if getattr(c.delta, "reasoning_content", None):
                kinds.append("r")
                reasoning += c.delta.reasoning_content
            if c.delta.content:
                kinds.append("c")
                content += c.delta.content
            finish = c.finish_reason or finish
    assert (reasoning, content, finish) == (REASONING, ANSWER, "stop")
    # Deltas carry what was generated since the last one: on a loaded machine a short reasoning can
    # arrive whole, so the check is that reasoning and answer come in separate deltas, in that order.
    assert kinds.count("r") >= 1 and kinds.count("c") >= 1, "reasoning and answer arrive in separate deltas"
    assert kinds == sorted(kinds, reverse=True), "all reasoning comes before the answer"
    assert usage.prompt_tokens == chat_prompt_tokens(taught_tokenizer, "hello")
    assert usage.completion_tokens == reply_tokens(taught_tokenizer, REPLY)


def test_completions_raw_text_n_and_stream(client, taught_tokenizer):
    prompt = taught_tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                                  tokenize=False)
    r = client.completions.create(model="tiny", prompt=prompt, temperature=0, n=2, max_tokens=40)
    assert [c.text for c in r.choices] == [REPLY, REPLY]
    assert r.usage.prompt_tokens == reply_tokens(taught_tokenizer, prompt)
    assert r.usage.completion_tokens == 2 * reply_tokens(taught_tokenizer, REPLY)
    chunks = [c.choices[0].text for c in client.completions.create(
        model="tiny", prompt=prompt, temperature=0, max_tokens=40, stream=True) if c.choices]
    assert "".join(chunks) == REPLY
    # deltas are sent as the engine makes them (several merge only when the client falls behind)
    assert len([t for t in chunks if t]) > 3


def test_sampling_parameters(client):
    def ask(**kw):
        return client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "tell me"}], **kw)

    short = ask(temperature=0, max_tokens=3)
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 3
    stopped = ask(temperature=0, stop=["="])
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].message.reasoning_content == "2+2"
    assert stopped.choices[0].message.content == ""
    seeded = [ask(temperature=1.5, top_p=0.9, seed=7, max_tokens=12, n=2) for _ in range(2)]
    texts = [[c.message.reasoning_content + "|" + c.message.content for c in r.choices] for r in seeded]
    assert texts[0] == texts[1], "the same seed gives the same choices"


def test_models_and_health(client, server):
    assert [m.id for m in client.models.list().data] == ["tiny"]
    assert client.models.retrieve("tiny").id == "tiny"
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok" and health["model"] == "tiny"


def test_concurrent_requests_share_forward_passes(server):
    before = httpx.get(f"{server.url}/health").json()

    async def many():
        async with openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0,
                                      timeout=60) as aclient:
            return await asyncio.gather(*(aclient.chat.completions.create(
                model="tiny", messages=[{"role": "user", "content": "hello"}], temperature=0) for _ in range(8)))

    replies = asyncio.run(many())
    assert all(r.choices[0].message.content == ANSWER for r in replies)
    after = httpx.get(f"{server.url}/health").json()
    tokens, steps = after["tokens"] - before["tokens"], after["steps"] - before["steps"]
    assert tokens == sum(r.usage.completion_tokens for r in replies)
    assert steps < tokens / 2, f"{steps} decode steps for {tokens} tokens: requests were not batched"


def test_thinking_budget_forces_the_end_of_thinking(client):
    r = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hello"}], temperature=0,
                                       extra_body={"thinking_budget": 3})
    # 3 thinking tokens (the opening <think> and two more), then </think> is forced
    assert r.usage.completion_tokens_details.reasoning_tokens == 4
    assert REASONING.startswith(r.choices[0].message.reasoning_content)
