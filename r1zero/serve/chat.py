"""`r1zero chat MODEL`: a conversation in the terminal, streamed token by token, thinking shown dimmed.

It runs the same engine as the server, in process (no HTTP). `/reset` starts a new conversation,
`/exit` or Ctrl-D quits, Ctrl-C stops the reply being written. As with the API, earlier reasoning
is not fed back into the conversation. Colour is off when stdout is not a terminal or NO_COLOR is set.
"""

from __future__ import annotations

import os
import queue
import sys
from dataclasses import dataclass

from r1zero.serve.engine import Engine, Event, Sequence
from r1zero.serve.jobs import render_chat
from r1zero.serve.reasoning import ReasoningStream


@dataclass
class ChatOptions:
    template: str = "chat"
    system: str | None = None
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 256
    seed: int | None = None


class Printer:
    """Writes reasoning dimmed and the answer plain, each after its own line break."""

    def __init__(self, out=sys.stdout):
        self.out = out
        color = out.isatty() and not os.environ.get("NO_COLOR")
        self.dim, self.plain = ("\x1b[2m", "\x1b[0m") if color else ("", "")
        self.section = None

    def write(self, reasoning: str, content: str) -> None:
        if reasoning:
            if self.section != "reasoning":
                self.out.write(f"{self.dim}thinking: ")
                self.section = "reasoning"
            self.out.write(reasoning)
        if content:
            if self.section != "content":
                self.out.write(f"{self.plain}\n" if self.section else "")
                self.section = "content"
            self.out.write(content)
        self.out.flush()

    def end(self, note: str = "") -> None:
        self.out.write(f"{self.plain}{note}\n")
        self.out.flush()
        self.section = None


def reply(engine: Engine, prompt_ids: list[int], opens_thinking: bool, opts: ChatOptions, printer: Printer) -> str:
    """Stream one reply to the printer; returns its answer (the content), for the conversation."""
    events: queue.Queue[Event] = queue.Queue()
    context_left = engine.context - len(prompt_ids)
    seq = Sequence(prompt_ids, events.put, max_new_tokens=max(1, min(opts.max_tokens, context_left)),
                   temperature=opts.temperature, top_p=opts.top_p, seed=opts.seed)
    engine.submit([seq])
    stream, answer = ReasoningStream(opens_thinking), ""
    try:
        while True:
            event = events.get()
            reasoning, content = stream.feed(event.text, final=event.finish_reason is not None)
            printer.write(reasoning, content)
            answer += content
            if event.finish_reason:
                printer.end({"length": " [max tokens]", "error": f" [error: {event.error}]"}.get(event.finish_reason, ""))
                return answer
    except KeyboardInterrupt:
        seq.cancel()
        printer.end(" [stopped]")
        return answer


def run_chat(model, tokenizer, name: str, opts: ChatOptions, lines=None) -> int:
    """The chat loop over `lines` (default: the terminal)."""
    engine = Engine(model, tokenizer, max_batch=1, max_waiting=1).start()
    printer, messages = Printer(), []
    print(f"r1zero chat with {name} (template {opts.template}); /reset starts over, /exit or Ctrl-D quits")
    read = (lambda: next(lines)) if lines is not None else (lambda: input("you> "))
    try:
        while True:
            try:
                line = read().strip()
            except (EOFError, StopIteration):
                break
            if line in ("/exit", "/quit"):
                break
            if line == "/reset":
                messages = []
                print("(new conversation)")
                continue
            if not line:
                continue
            messages.append({"role": "user", "content": line})
            system = [{"role": "system", "content": opts.system}] if opts.system else []
            ids, opens = render_chat(tokenizer, opts.template, system + messages)
            if len(ids) >= engine.context:
                print(f"(the conversation is longer than the model's {engine.context}-token context; /reset)")
                messages.pop()
                continue
            messages.append({"role": "assistant", "content": reply(engine, ids, opens, opts, printer)})
    finally:
        engine.close()
    return 0
