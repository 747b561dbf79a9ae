"""The tool-aware chat template: unchanged without tools; calls and results written as a rollout writes them."""

from __future__ import annotations

from r1zero.models.build import CHAT_TEMPLATE
from r1zero.models.io import load_tokenizer
from r1zero.tools import load_tool, render_tool_call, render_tool_response
from r1zero.tools.template import supports_tools


def test_built_folders_render_tool_calls_as_rollouts_write_them(tiny_model):
    tok = load_tokenizer(tiny_model)
    assert supports_tools(tok)
    plain = [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"},
             {"role": "assistant", "content": "yo"}, {"role": "user", "content": "2+2?"}]
    new = tok.apply_chat_template(plain, add_generation_prompt=True, tokenize=False)
    assert new == tok.apply_chat_template(plain, chat_template=CHAT_TEMPLATE, add_generation_prompt=True, tokenize=False)
    call = {"type": "function", "function": {"name": "calculator", "arguments": {"expression": "12*34"}}}
    convo = [{"role": "user", "content": "12*34?"}, {"role": "assistant", "content": "<think>", "tool_calls": [call]},
             {"role": "tool", "content": "408"}, {"role": "assistant", "content": "</think><answer>408</answer>"}]
    text = tok.apply_chat_template(convo, tools=[load_tool("calculator").schema()], tokenize=False)
    rollout = ("<think>" + render_tool_call("calculator", {"expression": "12*34"}) + render_tool_response("408")
               + "</think><answer>408</answer>" + tok.eos_token)
    assert text.startswith("Tools (call one as") and text.endswith("User: 12*34?\nAssistant: " + rollout + "\n")
    prompt = tok.apply_chat_template(convo[:3], add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("</tool_response>"), "after a tool result the assistant's turn goes on"
