"""`/backtest` through the real PTB Application and the loopback Bot API stand-in, on the real core.

The backtest is held at half-way (its own progress callback waits on an Event) while the test sends
other commands: their answers arriving before the backtest's proves the bot stays responsive while the
worker thread runs, without depending on how fast the machine is.
"""
from __future__ import annotations

import asyncio
import threading
import time

import pytest
from bot_helpers import TRADER, start_core
from fakes.bot_api_server import BotApiServer

from bot.runner import make_router
from bot.telegram_bot import TelegramFrontEnd
from core.backtest.api import run_backtest

TOKEN = "123456:TEST-token-not-real-aaaaaaaaaaaaaaaaaaaaaaa"


class HalfwayGate:
    """Wraps run_backtest so the worker stops at 50% until the test opens the gate.

    On the way it also waits at 10%, 20%, 30% and 40% until the chat shows an edit at least that far: a
    fast backtest would otherwise reach half-way before the event loop sent a single edit, and the test
    would depend on the machine's speed after all."""

    def __init__(self, api=None) -> None:
        self.reached = threading.Event()
        self.gate = threading.Event()
        self.threads: set[str] = set()
        self.api = api
        self.waited: set[int] = set()

    def _edited_to(self, pct: int) -> bool:
        return any(c.params["text"].startswith("⏳ Backtesting") and _pct(c.params["text"]) >= pct
                   for c in list(self.api.sent("editMessageText")))

    def __call__(self, cfg, symbol, *, progress, **kw):
        def prog(done: int, total: int) -> None:
            self.threads.add(threading.current_thread().name)
            progress(done, total)
            step = (100 * done // max(total, 1)) // 10 * 10
            if self.api is not None and 10 <= step < 50 and step not in self.waited:
                self.waited.add(step)
                deadline = time.monotonic() + 10
                while not self._edited_to(step) and time.monotonic() < deadline:
                    time.sleep(0.01)
            if done >= total // 2 and not self.reached.is_set():
                self.reached.set()
                assert self.gate.wait(20), "the test never opened the gate"

        return run_backtest(cfg, symbol, progress=prog, **kw)


@pytest.fixture
async def tg(tmp_path):
    api = await BotApiServer(token=TOKEN).start()
    service, clock = await start_core(tmp_path)
    router = make_router(service, service.cfg, chart_dir=tmp_path / "charts")
    router.backtest.min_interval = 0.0  # a 3-day run is far shorter than the 2 s production throttle
    fe = TelegramFrontEnd(router, TOKEN, base_url=api.base_url, base_file_url=api.base_file_url, poll_timeout=1)
    await fe.start()
    try:
        yield api, router
    finally:
        await fe.stop()
        await service.stop()
        await api.stop()


def _texts_to(api, chat_id, after: int = 0) -> list[str]:
    return [c.params["text"] for c in api.calls[after:]
            if c.method == "sendMessage" and c.status == 200 and c.params["chat_id"] == chat_id]


def _pct(text: str) -> int:
    return int(text.split("… ", 1)[1].split("%", 1)[0])


async def test_backtest_progress_edits_then_photo_and_summary_while_bot_stays_responsive(tg):
    api, router = tg
    gate = HalfwayGate(api)
    router.backtest.runner = gate
    try:
        api.push_text("/backtest XAUUSDc 3", TRADER)
        assert await asyncio.to_thread(gate.reached.wait, 20)
        # the 0% message was posted and edited as the worker went (10%, 20%, ... up to half-way)
        progress_msg = await api.wait_for(lambda a: next(
            (c for c in a.sent("sendMessage") if c.params["text"].startswith("⏳ Backtesting XAUUSDc")), None))
        key = next(k for k in api.messages if k[0] == TRADER)  # the first message the bot sent this chat
        await api.wait_for(lambda a: [c for c in a.sent("editMessageText") if c.params["message_id"] == key[1]])

        # meanwhile: another command is answered, and a second backtest is told to wait
        mark = len(api.calls)
        api.push_text("/help", TRADER)
        await api.wait_for(lambda a: any("MoneyBot commands" in t for t in _texts_to(a, TRADER, mark)))
        api.push_text("/backtest BTCUSDc 2", TRADER)
        await api.wait_for(lambda a: any("already running" in t for t in _texts_to(a, TRADER, mark)))
        assert not api.sent("sendPhoto")  # the backtest is still held at half-way
    finally:
        gate.gate.set()

    photo = (await api.wait_for(lambda a: a.sent("sendPhoto"), timeout=30))[-1]
    assert photo.files["photo"].startswith(b"\x89PNG") and len(photo.files["photo"]) > 10_000
    summary = await api.wait_for(lambda a: [t for t in _texts_to(a, TRADER) if t.startswith("📊 Backtest")])
    text = summary[-1]
    assert text.startswith("📊 Backtest XAUUSDc M5, 3 days before the replay clock") and "Win rate" in text and "Max drawdown" in text
    n = int(text.split("(n=", 1)[1].split(")", 1)[0])
    assert text.count(f"(n={n})") >= 8  # the trade count next to each figure

    assert progress_msg.params["text"] == "⏳ Backtesting XAUUSDc, 3 days before the replay clock… 0%"
    edits = [c.params["text"] for c in api.sent("editMessageText") if c.params["message_id"] == key[1]]
    pcts = [_pct(t) for t in edits[:-1]]
    assert len(pcts) >= 5 and pcts == sorted(pcts) and pcts[-1] >= 50
    assert edits[-1].startswith("✅ Backtest XAUUSDc done: ") and " bars in " in edits[-1]
    assert api.messages[key]["text"] == edits[-1]  # the progress message now says it is done
    order = [c.method for c in api.sent("sendPhoto", "editMessageText")]
    assert order[-1] == "sendPhoto"  # the chart comes after the last progress edit
    assert all(name != "MainThread" for name in gate.threads)  # the backtest ran in a worker thread

    # bad input: one clear line each, and no progress message
    mark = len(api.calls)
    for cmd in ("/backtest XAUUSDc abc", "/backtest XAUUSDc 3 4", "/backtest"):
        api.push_text(cmd, TRADER)
    api.push_text("/backtest xauusd 3", TRADER)
    await api.wait_for(lambda a: len(_texts_to(a, TRADER, mark)) >= 4)
    texts = _texts_to(api, TRADER, mark)
    assert sum(t.startswith("Usage: /backtest SYMBOL [days]") for t in texts) == 3
    assert any(t.startswith("I don't know the symbol 'xauusd'. Did you mean XAUUSDc") for t in texts)
    assert not any(t.startswith("⏳") for t in texts) and not api.sent("sendPhoto")[1:]
