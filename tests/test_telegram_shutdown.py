"""Ctrl-C / SIGTERM while a Telegram command is still working: the front end stops promptly.

PTB's `Application.stop()` waits for every update still being handled, so a `/backtest` that had minutes
of CPU left held the whole process after the trader pressed Ctrl-C. The backtest is held at half-way
(as in test_telegram_backtest) so the test does not depend on how fast the machine is.
"""
from __future__ import annotations

import asyncio
import threading
import time

from bot_helpers import TRADER, start_core
from fakes.bot_api_server import BotApiServer

from bot.progress import Cancelled
from bot.runner import make_router
from bot.telegram_bot import TelegramFrontEnd
from core.backtest.api import run_backtest

TOKEN = "123456:TEST-token-not-real-aaaaaaaaaaaaaaaaaaaaaaa"


class HeldAtHalfway:
    """run_backtest whose worker waits at 50% until released; records how the worker ended."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()
        self.ended: list[str] = []

    def __call__(self, cfg, symbol, *, days, progress):
        def prog(done: int, total: int) -> None:
            progress(done, total)
            if done >= total // 2 and not self.reached.is_set():
                self.reached.set()
                self.release.wait(30)

        try:
            report = run_backtest(cfg, symbol, days=days, progress=prog)
        except Cancelled:
            self.ended.append("cancelled")
            raise
        self.ended.append("finished")
        return report


async def test_stop_does_not_wait_for_a_running_backtest(tmp_path):
    api = await BotApiServer(token=TOKEN).start()
    service, clock = await start_core(tmp_path)
    router = make_router(service, service.cfg, chart_dir=tmp_path / "charts")
    router.backtest.min_interval = 0.0
    held = HeldAtHalfway()
    router.backtest.runner = held
    fe = TelegramFrontEnd(router, TOKEN, base_url=api.base_url, base_file_url=api.base_file_url, poll_timeout=1)
    await fe.start()
    try:
        api.push_text("/backtest XAUUSDc 3", TRADER)
        assert await asyncio.to_thread(held.reached.wait, 30)
        t0 = time.monotonic()
        stopping = asyncio.create_task(fe.stop())
        done, _ = await asyncio.wait([stopping], timeout=5)
        held.release.set()  # let the worker thread reach its next progress report (and stop there)
        assert done, "TelegramFrontEnd.stop() waited for the backtest to finish"
        await stopping
        assert time.monotonic() - t0 < 5
        for _ in range(200):
            if held.ended:
                break
            await asyncio.sleep(0.05)
        assert held.ended == ["cancelled"]  # the worker stopped instead of burning the CPU to the end
        # the trader's progress message says the backtest stopped (not stuck at 50 % for ever)
        progress = [m for m in api.messages.values() if m["chat"]["id"] == TRADER
                    and m.get("text", "").startswith(("⏳ Backtesting", "❌ Backtest"))]
        assert progress and progress[-1]["text"] == "❌ Backtest XAUUSDc stopped."
        assert not api.sent("sendPhoto")
    finally:
        held.release.set()
        if fe.app.running:
            await fe.stop()
        await service.stop()
        await api.stop()
