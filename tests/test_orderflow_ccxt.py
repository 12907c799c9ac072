"""ccxt order-flow source against a local Binance stand-in (recorded prints), and the live news calendar.

No test touches the network (tests/netguard.py): ccxt is pointed at 127.0.0.1 through its own
`urls['api']['public']` override (config `orderflow_feeds.api_url`).
"""
from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest
from analysis_helpers import app, app_with
from binance_standin import BTC_FILE, Standin, recorded

from core.data.sources.exchange_flow import ExchangeFlowSource, make_exchange
from core.data.sources.market_context import MarketContext
from core.data.sources.news_live import LiveCalendarSource
from core.data.sources.orderflow import signals
from core.domain.clock import FixedClock

pytestmark = pytest.mark.timeout(90)  # a hung socket fails here, not after the suite default

BTC = recorded(BTC_FILE)
LAST = float(BTC["time"][-1])


def _feeds(url: str, **kw):
    base = {"api_url": url + "/api/v3", "symbols": {"BTCUSDc": "BTC/USDT", "ETHUSDc": "ETH/USDT", "XAUUSDc": "XAU/USDT"},
            "timeout_seconds": 2, "refresh_seconds": 1, "trades_limit": 1000, **kw}
    return app_with({"orderflow_feeds": base}).orderflow_feeds


@pytest.fixture
def standin():
    with Standin() as s:
        yield s


async def _refresh(src: ExchangeFlowSource, sym: str = "BTCUSDc"):
    return await src.refresh(sym)


def test_ccxt_url_override_and_symbol_mapping(standin):
    eth_last = float(standin.trades["ETHUSDT"]["time"][-1])

    async def go():
        src = ExchangeFlowSource(_feeds(standin.url), FixedClock(LAST + 1))
        other = ExchangeFlowSource(_feeds(standin.url), FixedClock(eth_last + 1))
        try:
            st = await src.refresh("BTCUSDc")
            again = await src.refresh("BTCUSDc")  # the same 1000 prints again: merged by id, not doubled
            assert again.snapshot.n_trades == 1000
            standin.server_now = eth_last + 1
            eth = await other.refresh("ETHUSDc")
        finally:
            await src.close()
            await other.close()
        return src, st, eth

    src, st, eth = asyncio.run(go())
    assert any(p.endswith("/api/v3/trades") for p in standin.requests), standin.requests
    assert st.problem is None and st.snapshot is not None
    snap = st.snapshot
    assert snap.source == "Binance BTC/USDT" and snap.kind == "exchange"
    # the same signals as computed straight from the recorded file (ms rounding aside)
    ref = signals(BTC[-1000:], snap.timestamp, 300.0, book=snap.book_imbalance)
    assert snap.n_trades == ref.n_trades == 1000
    assert snap.imbalance == pytest.approx(ref.imbalance, abs=1e-9)
    assert snap.cumulative_delta == pytest.approx(ref.cumulative_delta, rel=1e-6)
    assert snap.large_imbalance == pytest.approx(ref.large_imbalance, abs=1e-6)
    assert snap.book_imbalance is not None and -1 <= snap.book_imbalance <= 1
    assert eth.snapshot is not None and eth.snapshot.source == "Binance ETH/USDT"
    assert make_exchange(_feeds(standin.url)).urls["api"]["public"] == standin.url + "/api/v3"


@pytest.mark.parametrize("mode,kind", [("429", "rate_limit"), ("418", "rate_limit"), ("maintenance", "maintenance"),
                                       ("malformed", "malformed"), ("skew", "clock_skew"),
                                       ("skew_behind", "clock_skew")])
def test_ccxt_failures_are_soft_and_named(standin, mode, kind):
    async def go():
        src = ExchangeFlowSource(_feeds(standin.url), FixedClock(LAST + 1))
        try:
            good = await src.refresh("BTCUSDc")
            first = good.snapshot
            src._refreshes = 0  # the next refresh checks the server time again
            standin.mode = mode
            bad = await src.refresh("BTCUSDc")
            return src, first, bad
        finally:
            await src.close()

    src, first, st = asyncio.run(go())
    assert st.kind == kind and st.problem
    if mode == "skew_behind":  # our clock ahead: only the server-time check can tell
        assert "ahead of the exchange's" in st.problem
    assert st.snapshot is first  # the last good snapshot stays; it ages out under the freshness limit
    if kind in ("rate_limit", "maintenance"):
        assert src.backoff("BTCUSDc") > src.cfg.refresh_seconds
    else:
        assert src.backoff("BTCUSDc") == src.cfg.refresh_seconds


def test_ccxt_timeout_is_soft(standin):
    standin.delay = 1.5

    async def go():
        src = ExchangeFlowSource(_feeds(standin.url, timeout_seconds=0.5), FixedClock(LAST + 1))
        try:
            t0 = time.perf_counter()
            st = await src.refresh("BTCUSDc")
            return st, time.perf_counter() - t0
        finally:
            await src.close()

    st, took = asyncio.run(go())
    assert st.kind == "timeout" and "did not answer in time" in st.problem
    assert took < 1.4


def test_ccxt_unknown_symbol(standin):
    async def go():
        src = ExchangeFlowSource(_feeds(standin.url), FixedClock(LAST + 1))
        try:
            return await src.refresh("XAUUSDc")
        finally:
            await src.close()

    st = asyncio.run(go())
    assert st.kind == "unknown_symbol" and "does not know this symbol" in st.problem


def test_orderflow_analysis_never_waits_on_the_network(standin):
    """The hub's read is a dict lookup: with the exchange hanging, `flow()` still answers at once."""
    standin.delay = 3.0
    cfg = app_with({"orderflow_feeds": {"api_url": standin.url + "/api/v3", "timeout_seconds": 5,
                                         "symbols": {"BTCUSDc": "BTC/USDT"}}})

    async def go():
        mc = MarketContext(cfg, FixedClock(LAST + 1))
        await mc.start()
        await asyncio.sleep(0.1)  # the refresh is now blocked in the stand-in
        t0 = time.perf_counter()
        out = mc.flow("BTCUSDc")
        took = time.perf_counter() - t0
        await mc.stop()
        return out, took

    (snap, err), took = asyncio.run(go())
    assert snap is None and "no snapshot yet" in err and took < 0.01


def test_orderflow_failure_reported_once_and_last_known_policy(standin):
    reports = []
    cfg = app_with({"orderflow_feeds": {"api_url": standin.url + "/api/v3", "symbols": {"BTCUSDc": "BTC/USDT"}}})
    clock = FixedClock(LAST + 1)

    async def go():
        mc = MarketContext(cfg, clock, report=lambda *a: reports.append(a))
        await mc.refresh_exchange("BTCUSDc")
        standin.mode = "429"
        for _ in range(3):
            await mc.refresh_exchange("BTCUSDc")
        kept = mc.flow("BTCUSDc")
        clock.advance(16 * 60)  # past data_source_unavailable.max_age_minutes (15)
        dropped = mc.flow("BTCUSDc")
        await mc.stop()
        return kept, dropped, mc.status(), mc.problems()

    kept, dropped, status, problems = asyncio.run(go())
    assert len(reports) == 1 and "rate-limiting" in reports[0][1]
    assert kept[0] is not None and "using the last good snapshot" in kept[1]
    assert dropped[0] is None and "rate-limiting" in dropped[1]
    assert status["orderflow BTCUSDc"]["problem"] and any("rate-limiting" in p for p in problems)


# -- news --------------------------------------------------------------------------------------------
def test_live_calendar_fetch_cache_and_offline_restart(standin, tmp_path):
    now = 1769800000.0
    cache = tmp_path / "cal.json"

    async def go():
        src = LiveCalendarSource(standin.url + "/calendar.json", cache, FixedClock(now), timeout=2)
        ok = await src.refresh()
        return src, ok

    src, ok = asyncio.run(go())
    cal, err = src.get()
    assert ok and err is None and len(cal.events) == 86 and cal.fetched_at == now
    assert json.loads(cache.read_text())["events"]
    # restart without network: the disk copy is this week's calendar, with its real age
    offline = LiveCalendarSource("http://127.0.0.1:9/calendar.json", cache, FixedClock(now + 600), timeout=0.5)
    cal2, _ = offline.get()
    assert cal2 is not None and len(cal2.events) == 86 and offline.age_seconds(now + 600) == pytest.approx(600)
    assert not asyncio.run(offline.refresh()) and "network error" in offline.last_error
    assert offline.get()[0] is not None


@pytest.mark.parametrize("mode,says", [("429", "rate-limiting"), ("malformed", "invalid JSON")])
def test_live_calendar_failures_keep_the_last_good_copy(standin, tmp_path, mode, says):
    src = LiveCalendarSource(standin.url + "/calendar.json", tmp_path / "c.json", FixedClock(1769800000.0), timeout=2)
    assert asyncio.run(src.refresh())
    standin.mode = mode
    assert not asyncio.run(src.refresh())
    assert says in src.last_error and src.get()[0] is not None


def test_live_calendar_timeout(standin, tmp_path):
    standin.delay = 1.5
    src = LiveCalendarSource(standin.url + "/calendar.json", tmp_path / "c.json", FixedClock(1769800000.0), timeout=0.3)
    t0 = time.perf_counter()
    assert not asyncio.run(src.refresh())
    assert time.perf_counter() - t0 < 1.4 and "did not answer in time" in src.last_error


def test_news_age_on_the_card_and_degrade_past_the_limit(standin, tmp_path):
    """The news check degrades to the seed's skip_news_check past 60 minutes, and the card says so."""
    from analysis_helpers import run, ts

    from bot.presenter import data_sources_line
    from core.data.sources.news import NewsCalendar, NewsEvent

    now = ts("2025-06-03T10:00")
    ev = NewsEvent(now + 86400, "USD", "High", "CPI")
    limit = app().data_quality.news_calendar.max_age_minutes * 60
    fresh = run("XAUUSDc", now, news=NewsCalendar((ev,), now - limit, "live"))
    stale = run("XAUUSDc", now, news=NewsCalendar((ev,), now - limit - 60, "live"))
    dq = lambda r: next(f for f in r.filters if f.name == "data_quality")  # noqa: E731
    assert dq(fresh).details["news_calendar"]["available"]
    assert "news calendar 60 min old" in data_sources_line(fresh)
    assert "no order-flow feed" in data_sources_line(fresh)  # XAUUSDc: which source the verdict used: none
    assert dq(stale).details["news_calendar"]["fallback"] == "skip_news_check"
    assert "news NOT checked" in data_sources_line(stale)
    assert any("News calendar: the calendar was downloaded 61 minutes ago" in w for w in stale.warnings)
    assert np.isfinite(fresh.confidence)
