"""Review: console chat input a terminal can really produce must never end the chat."""
from __future__ import annotations

import io
from types import SimpleNamespace

from bot.console import ConsoleChat
from bot.replies import Button, Reply


class EchoRouter:
    """Records what reaches the command layer; the console's own handling is what is under test."""

    cfg = SimpleNamespace(symbols={"XAUUSDc": None})

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.payloads: list[str] = []

    async def handle_text(self, text, user_id, progress=None):
        self.texts.append(text)
        if text == "/close 7":
            return Reply(text="Close #7?", buttons=[[Button("Yes", "c:7:1735910700"), Button("Cancel", "x:close")]])
        return Reply(text=f"answer to {text}")

    def knows(self, word):  # the console leaves the slash off only for a command's name
        return word.lower() in {"status", "help", "close", "scalp"}

    async def handle_callback(self, payload, user_id):
        self.payloads.append(payload)
        return Reply(text=f"tapped {payload}", edit=True)


async def test_superscript_digit_is_not_a_crash():
    # "²".isdigit() is True but int("²") raises: the console task must not die on it
    router, out = EchoRouter(), io.StringIO()
    chat = ConsoleChat(router, stdin=io.StringIO("/close 7\n²\n1\n/status\n"), stdout=out)
    await chat.run()
    text = out.getvalue()
    assert router.payloads == ["c:7:1735910700"] and "/status" in router.texts
    assert text.rstrip().endswith("bye (end of input)")


async def test_non_utf8_bytes_do_not_end_the_chat():
    raw = io.BytesIO(b"/help \xff\xfe\n/status\n")
    router, out = EchoRouter(), io.StringIO()
    chat = ConsoleChat(router, stdin=io.TextIOWrapper(raw, encoding="utf-8"), stdout=out)
    await chat.run()
    assert router.texts[-1] == "/status" and len(router.texts) == 2
    assert "answer to /status" in out.getvalue()


async def test_very_long_line_is_answered():
    router, out = EchoRouter(), io.StringIO()
    chat = ConsoleChat(router, stdin=io.StringIO("/scalp " + "X" * 200_000 + "\n/status\n"), stdout=out)
    await chat.run()
    assert router.texts[-1] == "/status" and len(router.texts) == 2
