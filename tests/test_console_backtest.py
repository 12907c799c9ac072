"""`/backtest` in the console chat, driven through stdin on the real core: progress lines, the equity
chart's path and the summary, while the chat keeps answering other commands."""
from __future__ import annotations

import asyncio
import io
import os
import threading
from pathlib import Path

from bot_helpers import start_core, until
from progress_pacing import paced

from bot.console import ConsoleChat
from bot.runner import make_router


class _Out(io.StringIO):
    """stdout that tells the test when the /help answer has been printed."""

    def __init__(self) -> None:
        super().__init__()
        self.help_seen = threading.Event()

    def write(self, s: str) -> int:
        n = super().write(s)
        if "MoneyBot commands" in s:
            self.help_seen.set()
        return n


async def test_console_backtest_progress_chart_summary_and_other_commands_meanwhile(tmp_path):
    service, clock = await start_core(tmp_path)
    out = _Out()
    reached, gate = threading.Event(), threading.Event()

    # held half-way until the test opens the gate; paced so each 10 % step is printed before it goes on
    held_half_way = paced(lambda: out.getvalue().splitlines(), hold_at_half=gate, reached=reached)

    r, w = os.pipe()  # a stdin the test types into line by line, like a trader at a terminal
    stdin = os.fdopen(r, "r", encoding="utf-8")

    def type_line(line: str) -> None:
        os.write(w, (line + "\n").encode())

    try:
        router = make_router(service, service.cfg, chart_dir=tmp_path / "charts")
        router.backtest.min_interval = 0.0
        router.backtest.runner = held_half_way
        chat = ConsoleChat(router, stdin=stdin, stdout=out, chart_dir=tmp_path / "charts")
        task = asyncio.create_task(chat.run())
        type_line("/backtest xauusdc 3")
        assert await asyncio.to_thread(reached.wait, 20)
        try:
            type_line("/help")  # answered while the backtest is held half-way in its worker thread
            assert await asyncio.to_thread(out.help_seen.wait, 20)
            type_line("backtest BTCUSDc 2")
            await until(lambda: "A backtest is already running" in out.getvalue())
            assert "✅ Backtest" not in out.getvalue() and "📊" not in out.getvalue()
        finally:
            gate.set()
        await until(lambda: "📊 Backtest" in out.getvalue())
        type_line("/backtest XAUUSDc x")
        type_line("backtest nope")
        os.close(w)
        w = -1
        await asyncio.wait_for(task, 30)  # EOF: the chat ends

        text = out.getvalue()
        lines = text.splitlines()
        progress = [ln for ln in lines if ln.startswith("⏳ Backtesting XAUUSDc, 3 days before the replay clock… ")]
        assert progress[0].endswith("… 0%") and len(progress) >= 5
        pcts = [int(ln.split("… ", 1)[1].split("%", 1)[0]) for ln in progress]
        assert pcts == sorted(pcts) and pcts[-1] >= 80
        helped = next(i for i, ln in enumerate(lines) if ln.startswith("MoneyBot commands"))
        done = next(i for i, ln in enumerate(lines) if ln.startswith("✅ Backtest XAUUSDc done: "))
        summary = next(i for i, ln in enumerate(lines) if ln.startswith("📊 Backtest XAUUSDc M5, 3 days before the replay clock"))
        assert lines.index(progress[0]) < helped < done < summary
        assert "(n=" in lines[summary + 2]
        chart = next(ln.split("chart: ", 1)[1] for ln in lines[summary:] if ln.startswith("chart: "))
        assert Path(chart).name == "backtest_XAUUSDc_3d.png" and Path(chart).read_bytes().startswith(b"\x89PNG")
        assert "Usage: /backtest SYMBOL [days]" in text
        assert "I don't know the symbol 'nope'" in text
        assert text.rstrip().endswith("bye (end of input)") and "Traceback" not in text
    finally:
        gate.set()
        if w >= 0:
            os.close(w)
        stdin.close()
        await service.stop()
