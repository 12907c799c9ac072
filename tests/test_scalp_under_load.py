"""Issue 15.7 and 15.8: /scalp under load.

Within one closed bar a symbol's analysis and chart are the same for everyone: concurrent requests await
one computation, keyed by (symbol, last closed bar, config version), so a new bar or a config change is
a new entry; the card's live quote and entry check stay current per card. A per-user rate limit answers
a flood politely, and /status, /close, /pause, /emergency never wait behind analysis work (the analysis
runs in a pool of its own, so asyncio's default executor stays free for broker calls)."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest
from bot_helpers import TRADER, start_core

import core.app
from bot import chart as chart_mod
from bot.rate_limit import RateLimiter
from bot.runner import make_router
from core.analysis.cache import analysis_key
from core.brokers.base import Tick
from core.config.model import AppConfig


async def _router(tmp_path, traders=60):
    users = tuple(range(7000, 7000 + traders))
    service, clock = await start_core(tmp_path, traders=(TRADER, *users))
    router = make_router(service, service.cfg, chart_dir=tmp_path / "charts")
    return service, clock, router, users


async def test_concurrent_scalps_share_one_analysis_and_one_chart_per_symbol_and_bar(tmp_path, monkeypatch):
    service, clock, router, users = await _router(tmp_path)
    renders = []
    real_render = chart_mod.render_analysis_chart

    def counting_render(*a, **k):
        renders.append(a[1].symbol)
        return real_render(*a, **k)

    monkeypatch.setattr(chart_mod, "render_analysis_chart", counting_render)
    try:
        # (at this replay instant only the XAUUSDc files have bars; the bench covers three symbols)
        replies = await asyncio.gather(*(router.handle_text("/scalp XAUUSDc", u) for u in users))
        assert all(r is not None and r.image and r.image.startswith(b"\x89PNG") for r in replies)
        assert service.analysis_cache.computed == 1  # one analysis for 60 requests
        assert renders == ["XAUUSDc"]  # one chart
        assert all("Live " in r.text for r in replies)
        assert len({p.id for p in service.store.proposals.list()}) >= 60  # each trader still gets own proposals
        # same bar again: nothing recomputed
        await router.handle_text("/scalp XAUUSDc", users[0])
        assert service.analysis_cache.computed == 1 and len(renders) == 1
        # a new bar is a new entry
        clock.advance(300)
        await router.handle_text("/scalp XAUUSDc", users[1])
        assert service.analysis_cache.computed == 2
        # a config change is a new entry (same bar)
        raw = service.cfg.model_dump(mode="json")
        raw["execution"]["proposal_expiry_seconds"] = 99
        service.cfg = AppConfig.model_validate(raw)
        assert service.cfg.version != service.execution.cfg.version
        await service.analyse("XAUUSDc")
        assert service.analysis_cache.computed == 3
    finally:
        await service.stop()


async def test_the_live_quote_on_a_cached_card_is_current(tmp_path, monkeypatch):
    service, clock, router, users = await _router(tmp_path, traders=2)
    try:
        first = await router.handle_text("/scalp XAUUSDc", users[0])
        before = service.analysis_cache.computed
        real_tick = service.broker.tick(service.resolve_symbol("XAUUSDc"))
        # a tick inside the same bar that moved less than the entry slippage allowed (0.1% of ~2650)
        nudged = Tick(time=real_tick.time, bid=real_tick.bid + 0.3, ask=real_tick.ask + 0.3)
        if analysis_key(service.cfg, "XAUUSDc", 0, nudged) != analysis_key(service.cfg, "XAUUSDc", 0, real_tick):
            # right at a bucket edge: nudge the other way
            nudged = Tick(time=real_tick.time, bid=real_tick.bid - 0.3, ask=real_tick.ask - 0.3)
        monkeypatch.setattr(service.broker, "tick", lambda symbol: nudged)
        second = await router.handle_text("/scalp XAUUSDc", users[1])
        assert service.analysis_cache.computed == before  # the analysis was shared…
        live1 = next(x for x in first.text.splitlines() if x.startswith("Live "))
        live2 = next(x for x in second.text.splitlines() if x.startswith("Live "))
        assert f"{nudged.bid:.2f}" in live2 and f"{nudged.bid:.2f}" not in live1  # …the quote is not
        # a quote that has left by more than the slippage allowed is a new analysis, same bar or not
        moved = Tick(time=real_tick.time, bid=real_tick.bid + 7.77, ask=real_tick.ask + 7.77)
        monkeypatch.setattr(service.broker, "tick", lambda symbol: moved)
        third = await router.handle_text("/scalp XAUUSDc", users[0])
        assert service.analysis_cache.computed == before + 1
        assert f"{moved.bid:.2f}" in next(x for x in third.text.splitlines() if x.startswith("Live "))
    finally:
        await service.stop()


async def test_a_failed_analysis_is_not_cached(tmp_path, monkeypatch):
    service, clock, router, users = await _router(tmp_path, traders=1)
    try:
        calls = []
        real = service._analyser

        async def flaky(symbol):
            calls.append(symbol)
            if len(calls) == 1:
                await asyncio.sleep(0.3)  # long enough for the second asker to join this run
                raise RuntimeError("feed hiccup")
            return await real(symbol)

        flaky.cacheable = True
        service._analyser = flaky
        clock.advance(300)
        with pytest.raises(RuntimeError):
            await asyncio.gather(service.analyse("XAUUSDc"), service.analyse("XAUUSDc"))
        assert len(calls) == 1  # both awaited the one failing run
        assert (await service.analyse("XAUUSDc")).symbol == "XAUUSDc" and len(calls) == 2
    finally:
        await service.stop()


def test_rate_limiter_burst_then_polite_retry_time():
    t = [0.0]
    rl = RateLimiter(limits={"scalp": (3, 5.0)}, now=lambda: t[0])
    assert [rl.retry_after(1, "scalp") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rl.retry_after(1, "scalp") == pytest.approx(5.0)
    assert rl.retry_after(2, "scalp") == 0.0  # another user is not affected
    assert rl.retry_after(1, "status") == 0.0  # not a limited command
    t[0] = 5.0
    assert rl.retry_after(1, "scalp") == 0.0


async def test_a_flood_is_refused_politely_and_never_blocks_status_close_pause_emergency(tmp_path, monkeypatch):
    service, clock, router, users = await _router(tmp_path, traders=1)
    release = threading.Event()
    real = core.app.analyse_range_scalp_opportunity

    def slow_analysis(*a, **k):  # analysis work that does not finish until the test says so
        release.wait(30)
        return real(*a, **k)

    monkeypatch.setattr(core.app, "analyse_range_scalp_opportunity", slow_analysis)
    flood, other, stuck = [], None, []
    try:
        _, props = await service.propose("XAUUSDc")
        opened = await service.approve(props[0].id, TRADER)
        assert opened.ok
        clock.advance(300)  # a new bar: the flood below cannot be served from the cache
        flood = [asyncio.ensure_future(router.handle_text(f"/scalp {s}", TRADER))
                 for s in ("XAUUSDc", "BTCUSDc", "EURUSDc", "XAUUSDc")]
        await asyncio.sleep(0.05)  # the four have started (and taken the burst)
        refused = await router.handle_text("/scalp XAUUSDc", TRADER)
        assert refused.kind == "refusal" and "please try again in" in refused.text and "s." in refused.text
        other = asyncio.ensure_future(router.handle_text("/backtest XAUUSDc 2", users[0]))
        # more analyses than the whole default executor has threads, all stuck
        stuck = [asyncio.ensure_future(service.analyse(s)) for s in ("BTCUSDc", "EURUSDc")]
        await asyncio.sleep(0.2)
        t0 = time.perf_counter()
        status = await asyncio.wait_for(router.handle_text("/status", TRADER), 5)
        close = await asyncio.wait_for(router.handle_text(f"/close {opened.ticket}", TRADER), 5)
        out = await asyncio.wait_for(service.close_trade(opened.ticket, TRADER), 5)  # broker calls in to_thread
        pause = await asyncio.wait_for(router.handle_text("/pause", TRADER), 5)
        emergency = await asyncio.wait_for(router.handle_text("/emergency", TRADER), 5)
        assert time.perf_counter() - t0 < 5
        assert f"#{opened.ticket}" in status.text and "Close #" in close.text and out.ok, out.message
        assert "Paused" in pause.text and "Emergency" in emergency.text
        assert not any(f.done() for f in flood)  # the analyses really were still running meanwhile
    finally:
        release.set()
        for f in [x for x in [*flood, other, *stuck] if x is not None]:
            try:
                await asyncio.wait_for(f, 60)
            except Exception:  # noqa: BLE001 - only letting them finish
                pass
        await service.stop()


def test_the_cache_key_changes_with_the_bar_the_config_and_a_quote_that_has_left():
    from core.config.model import load_config

    cfg = load_config()
    t = Tick(time=0, bid=2650.16, ask=2650.31)
    k = analysis_key(cfg, "XAUUSDc", 1_735_910_700, t)
    assert analysis_key(cfg, "XAUUSDc", 1_735_910_700 + 10, t) == k  # same bar
    assert analysis_key(cfg, "XAUUSDc", 1_735_910_700 + 300, t) != k  # next bar
    assert analysis_key(cfg, "XAUUSDc", 1_735_910_700, Tick(time=0, bid=2655.0, ask=2655.15)) != k  # 0.18% away
    assert analysis_key(cfg, "XAUUSDc", 1_735_910_700, Tick(time=0, bid=2650.16, ask=2650.61)) != k  # spread x3
    assert analysis_key(cfg, "XAUUSDc", 1_735_910_700, Tick(time=0, bid=float("nan"), ask=1.0))[-1] is None
