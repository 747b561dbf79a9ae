"""`r1zero chat`: the terminal conversation, through the real command."""

from __future__ import annotations

import io

from tests.serve.conftest import ANSWER, REASONING


def test_chat_command_streams_thinking_then_answer(taught_model, monkeypatch, capsys):
    from r1zero.cli import main

    lines = iter(["hello", "/reset", "hi", "/exit"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    assert main(["chat", str(taught_model), "--temperature", "0", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count(f"thinking: {REASONING}\n{ANSWER}\n") == 2
    assert "(new conversation)" in out


def test_thinking_is_dimmed_on_a_terminal(monkeypatch):
    from r1zero.serve.chat import Printer

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    out = Terminal()
    printer = Printer(out)
    printer.write("2+2", "")
    printer.write("=4", "4")
    printer.end()
    assert out.getvalue() == "\x1b[2mthinking: 2+2=4\x1b[0m\n4\x1b[0m\n"
