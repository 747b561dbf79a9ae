"""Tool calls through the API: the official openai client offers a tool, gets `tool_calls`, runs the tool,
sends the result back and reads the model's answer, against a real `r1zero serve` on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

from r1zero.serve.tools import split_tool_calls
from r1zero.tools import ToolBox, load_tool, parse_tool_calls
from r1zero.tools.template import TOOL_CHAT_TEMPLATE
from tests.conftest import build_tiny
from tests.serve.conftest import ServerProcess, fit_replies

QUESTION = "what is 12*34?"
CALL = '<think>12*34</think><tool_call>{"name": "calculator", "arguments": {"expression": "12*34"}}</tool_call>'
ANSWER = "<answer>408</answer>"


def teach_tool_use(out: Path, steps: int = 150) -> Path:
    """A tiny model with the tool-aware template, trained to call the calculator on QUESTION and to answer
    with the tool's result once it has read it."""
    import torch

    from r1zero.models.io import load_model, load_tokenizer, save_model_folder

    base = build_tiny(out.parent / "tool-base", max_position_embeddings=512)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, tok = load_model(base), load_tokenizer(base)
    tok.chat_template = TOOL_CHAT_TEMPLATE
    tools = [load_tool("calculator").schema()]
    user = [{"role": "user", "content": QUESTION}]
    called = user + [{"role": "assistant", "content": "<think>12*34</think>", "tool_calls": [
        {"type": "function", "function": {"name": "calculator", "arguments": {"expression": "12*34"}}}]},
        {"role": "tool", "content": "408"}]
    rows = []
    for messages, reply in ((user, CALL), (called, ANSWER)):
        prompt = tok.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=False)
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        rows.append((ids, tok(reply, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]))
    fit_replies(model, tok.pad_token_id, rows, steps)
    torch.set_num_threads(threads)
    return save_model_folder(model.eval(), tok, out)


@pytest.fixture(scope="module")
def tool_server(tmp_path_factory):
    model = teach_tool_use(tmp_path_factory.mktemp("tools") / "tool-model")
    proc = ServerProcess(model, "--served-model-name", "tiny")
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def client(tool_server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{tool_server.url}/v1", api_key="unused", max_retries=0, timeout=60)


def run_calls(tool_calls) -> list[dict]:
    """What a client does: run each call locally and answer with a tool message."""
    box = ToolBox([load_tool("calculator")])
    out = []
    for call in tool_calls:
        text = f'<tool_call>{{"name": {json.dumps(call.function.name)}, "arguments": {call.function.arguments}}}</tool_call>'
        out.append({"role": "tool", "tool_call_id": call.id, "content": box.run(parse_tool_calls(text)[0]).text})
    return out


def test_a_tool_round_trip_through_the_openai_client(client):
    tools = [load_tool("calculator").schema()]
    messages = [{"role": "user", "content": QUESTION}]
    first = client.chat.completions.create(model="tiny", messages=messages, tools=tools, temperature=0)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "calculator" and call.id.startswith("call_")
    assert json.loads(call.function.arguments) == {"expression": "12*34"}
    assert choice.message.reasoning_content == "12*34" and not choice.message.content
    results = run_calls(choice.message.tool_calls)
    assert results[0]["content"] == "408"
    messages += [choice.message.model_dump(exclude_none=True), *results]
    second = client.chat.completions.create(model="tiny", messages=messages, tools=tools, temperature=0)
    assert second.choices[0].message.content == "408" and second.choices[0].finish_reason == "stop"
    assert not second.choices[0].message.tool_calls


def test_streamed_tool_calls_and_tool_choice_none(client):
    tools = [load_tool("calculator").schema()]
    messages = [{"role": "user", "content": QUESTION}]
    calls, finish = {}, None
    for chunk in client.chat.completions.create(model="tiny", messages=messages, tools=tools, temperature=0,
                                                stream=True):
        for c in chunk.choices:
            for tc in c.delta.tool_calls or []:
                calls.setdefault(tc.index, tc)
            finish = c.finish_reason or finish
    assert finish == "tool_calls" and calls[0].function.name == "calculator"
    assert json.loads(calls[0].function.arguments) == {"expression": "12*34"}
    off = client.chat.completions.create(model="tiny", messages=messages, tools=tools, tool_choice="none",
                                         temperature=0, max_tokens=30)
    assert off.choices[0].finish_reason != "tool_calls" and not off.choices[0].message.tool_calls


def test_bad_tool_requests_are_400s(client):
    with pytest.raises(openai.BadRequestError, match="arguments: expected a JSON object"):
        client.chat.completions.create(model="tiny", messages=[
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
                                                  "function": {"name": "calculator", "arguments": "{oops"}}]},
            {"role": "tool", "tool_call_id": "c", "content": "1"}])
    with pytest.raises(openai.BadRequestError, match="tools"):
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "x"}],
                                       tools=[{"type": "function"}])


def test_split_tool_calls():
    text = 'a<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>b<tool_call>{bad</tool_call>'
    rest, calls = split_tool_calls(text)
    assert rest == "ab<tool_call>{bad</tool_call>" and calls[0]["function"] == {"name": "f", "arguments": '{"x": 1}'}
    rest, calls = split_tool_calls('<think>t</think><tool_call>{"name": "f", "arguments": {}}')  # cut by the stop
    assert rest == "<think>t</think>" and calls[0]["function"]["name"] == "f"
    assert split_tool_calls("<tool_call>{bad") == ("<tool_call>{bad", [])
