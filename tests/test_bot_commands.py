"""The command layer on the real core: replies, usage lines, roles, and the no-traceback guarantee."""
from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime

import pytest
from bot_helpers import STRANGER, TRADER, VIEWER, start_core
from progress_pacing import paced

from bot.progress import Cancelled
from bot.runner import make_router
from core.backtest.api import run_backtest
from core.domain.exceptions import UserFacingError


async def test_commands_end_to_end_on_the_real_core(tmp_path):
    service, clock = await start_core(tmp_path)
    router = make_router(service, service.cfg, chart_dir=tmp_path)
    say = lambda text, user=TRADER: router.handle_text(text, user)  # noqa: E731
    try:
        assert (await say("/metrics")).text.endswith("no closed trades yet.")
        r = await say("/scalp xauUSDc")
        assert r.image.startswith(b"\x89PNG") and r.buttons
        approve = r.buttons[0][0].payload
        out = await router.handle_callback(approve, TRADER)
        assert out.edit and out.text.startswith("✅ Executed at")
        ticket = service.broker.positions()[0].ticket
        r = await say(f"/close {ticket}")
        confirm = r.buttons[0][0].payload
        assert [b.payload for b in r.buttons[0]] == [f"c:{ticket}:{int(clock.now())}", "x:close"]
        assert service.broker.positions()
        assert (await router.handle_callback("x:close", TRADER)).text == "Cancelled."
        out = await router.handle_callback(confirm, TRADER)
        assert out.text.startswith(f"✅ Closed ticket {ticket} at") and service.broker.positions() == []
        trades = (await say("/trades 3")).text
        assert f"#{ticket} XAUUSDc long" in trades and "closed by hand" in trades
        m = (await say("/metrics 30")).text
        assert m.startswith("Metrics, last 30 days: 1 trade") and "By strategy:" in m
        c = (await say("/config BTCusdc")).text
        assert c.startswith("⚙️ Config for BTCUSDc · version ") and "Orders: 0.01 lot · you approve each trade" in c
        assert "{" not in c and "=" not in c  # words and units, not a dict dump
        h = (await say("/health")).text
        assert h.startswith("Health: ") and "Broker paper: connected" in h

        # bad input: one clear line each
        assert (await say("/scalp")).text.startswith("Usage: /scalp SYMBOL")
        assert (await say("/scalp btcusd")).text == "I don't know the symbol 'btcusd'. Did you mean BTCUSDc?"
        assert (await say("/trades 0")).text.startswith("Usage: /trades [n]")
        assert (await say("/trades 10000000000000000000000")).kind == "usage"
        assert (await say("/close abc")).text.startswith("Usage: /close TICKET")
        assert (await say("/close 999")).text == "No open trade with ticket 999. See /status."
        assert (await say("/metrics -3")).kind == "usage"
        assert (await say("/status now")).text == "/status takes no arguments. Try /help."
        assert (await say("/frobnicate")).text == "Unknown command /frobnicate. Try /help."
        assert (await say("hello")).kind == "usage"
        assert (await say("/backtest XAUUSDc -1")).text.startswith("Usage: /backtest")

        # roles: a viewer reads but cannot act; a stranger is refused once, then ignored
        r = await say("/scalp XAUUSDc", VIEWER)
        assert r.buttons == [] and "XAUUSDc" in r.text
        assert (await say("/pause", VIEWER)).kind == "refusal"
        assert (await say("/emergency", VIEWER)).kind == "refusal"
        assert (await router.handle_callback(f"e:{int(clock.now())}", VIEWER)).kind == "refusal"
        assert (await router.handle_callback("e:go", VIEWER)).kind == "refusal"
        assert service.notifier.entries_blocked() is None
        assert (await say("/help", STRANGER)).kind == "refusal"
        assert await say("/help", STRANGER) is None
    finally:
        await service.stop()


async def test_backtest_command_runs_core_backtest(tmp_path):
    service, clock = await start_core(tmp_path)
    router = make_router(service, service.cfg, chart_dir=tmp_path)
    router.backtest.min_interval = 0.0  # a 2-day run takes well under the 2 s production throttle
    texts: list[str] = []
    router.backtest.runner = paced(lambda: texts)

    async def progress(text: str) -> None:
        texts.append(text)

    try:
        t0 = time.perf_counter()
        r = await router.handle_text("/backtest xauusdc 2", TRADER, progress=progress)
        # the 2 days before the replay clock, not the file's last days (the replay's future), and it says so
        assert r.text.startswith("📊 Backtest XAUUSDc M5, 2 days before the replay clock"), r.text
        first, last = (datetime.strptime(x, "%d %b %Y %H:%M UTC").replace(tzinfo=UTC).timestamp()
                       for x in r.text.splitlines()[1].split(" · ")[0].split(" → "))
        assert clock.now() - 3600 < last <= clock.now() and first >= clock.now() - 2 * 86400 - 300, r.text
        assert time.perf_counter() - t0 < 60
        assert r.image.startswith(b"\x89PNG") and r.image_name == "backtest_XAUUSDc_2d.png"
        n = int(r.text.split("(n=", 1)[1].split(")", 1)[0])
        assert n >= 1 and "Win rate" in r.text and r.text.count(f"(n={n})") >= 8  # the count by every figure
        # progress: 0% first, rising percentages, then the outcome (never a 100% edit before it)
        assert texts[0] == "⏳ Backtesting XAUUSDc, 2 days before the replay clock… 0%"
        pcts = [int(t.split("… ", 1)[1].split("%", 1)[0]) for t in texts[:-1]]
        assert len(pcts) >= 5 and pcts == sorted(pcts) and all(b - a >= 10 for a, b in zip(pcts, pcts[1:], strict=False))
        assert texts[-1].startswith("✅ Backtest XAUUSDc done:") and " bars in " in texts[-1]

        # bad input never posts a progress message
        texts.clear()
        assert (await router.handle_text("/backtest XAUUSDc 0", TRADER, progress=progress)).kind == "usage"
        assert (await router.handle_text("/backtest", TRADER, progress=progress)).kind == "usage"
        r = await router.handle_text("/backtest xauusd 3", TRADER, progress=progress)
        assert r.text.startswith("I don't know the symbol 'xauusd'. Did you mean XAUUSDc")
        assert texts == []

        # a backtest that fails: the progress message says so, the reply is one clear line, the lock is freed
        for exc, expect in ((UserFacingError("not enough XAUUSDc bars in the chosen period"), "not enough XAUUSDc"),
                            (RuntimeError("engine bug detail"), "Sorry, something went wrong")):
            def failing(cfg, symbol, *, progress, exc=exc, **kw):
                progress(0, 10)
                raise exc

            texts.clear()
            router.backtest.runner = failing
            r = await router.handle_text("/backtest XAUUSDc 5", TRADER, progress=progress)
            assert r.text.startswith(expect) and "engine bug detail" not in r.text and r.image is None
            assert texts == ["⏳ Backtesting XAUUSDc, 5 days before the replay clock… 0%", "❌ Backtest XAUUSDc stopped."]
            assert not router.backtest._lock.locked()
    finally:
        await service.stop()


class _Broken:
    """The real service with one method failing the way a bug would."""

    def __init__(self, service):
        self._s = service

    def __getattr__(self, name):
        return getattr(self._s, name)

    def status(self):
        raise KeyError("internal detail that must not reach chat")


async def test_unexpected_error_becomes_apology_with_id_and_reaches_error_handler(tmp_path):
    service, clock = await start_core(tmp_path)
    try:
        router = make_router(_Broken(service), service.cfg, chart_dir=tmp_path)
        r = await router.handle_text("/status", TRADER)
        assert r.kind == "error" and r.error_id and f"error id {r.error_id}" in r.text
        assert "internal detail" not in r.text and "KeyError" not in r.text
        events = service.store.errors.count_since(0, ["critical", "high", "medium", "info"])
        assert events >= 1
    finally:
        await service.stop()


async def test_slippage_too_large_is_reported_on_the_card(tmp_path):
    service, clock = await start_core(
        tmp_path, overrides={"execution": {"max_entry_slippage_pct": 0.001, "proposal_expiry_seconds": 900}})
    router = make_router(service, service.cfg, chart_dir=tmp_path)
    try:
        card = await router.handle_text("/scalp XAUUSDc", TRADER)
        clock.advance(600)  # the replay moves on two bars: price is no longer at the proposed entry
        out = await router.handle_callback(card.buttons[0][0].payload, TRADER)
        assert out.edit and out.text.startswith("⚠️ Price has moved") and "did not trade" in out.text
        assert service.broker.positions() == []
    finally:
        await service.stop()


async def test_cancelled_backtest_stops_its_worker_thread(tmp_path):
    """Shutdown cancels the command; the worker thread then stops at its next progress report."""
    service, clock = await start_core(tmp_path)
    router = make_router(service, service.cfg, chart_dir=tmp_path)
    started, ended = threading.Event(), threading.Event()
    seen: list[tuple[int, int]] = []
    outcome: list[BaseException | None] = []

    def watched(cfg, symbol, *, progress, **kw):
        def prog(done: int, total: int) -> None:
            seen.append((done, total))
            started.set()
            progress(done, total)

        try:
            run_backtest(cfg, symbol, progress=prog, **kw)
            outcome.append(None)
        except BaseException as e:
            outcome.append(e)
            raise
        finally:
            ended.set()

    texts: list[str] = []

    async def sink(text: str) -> None:
        texts.append(text)

    try:
        router.backtest.runner = watched
        task = asyncio.create_task(router.handle_text("/backtest XAUUSDc 60", TRADER, progress=sink))
        assert await asyncio.to_thread(started.wait, 20)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(ended.wait, 20)
        assert isinstance(outcome[0], Cancelled)
        assert seen[-1][0] < seen[-1][1]  # stopped before the end of the run
        assert texts[-1] == "❌ Backtest XAUUSDc stopped." and not router.backtest._lock.locked()
    finally:
        await service.stop()
