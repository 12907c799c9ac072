"""Order flow in the analysis: recorded replay with and without coverage, MT5 tick flags, freshness, card, health."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np
import pytest
from analysis_helpers import app, app_with, bar_close, candles, run, ts
from binance_standin import BTC_FILE, recorded

from bot.health_text import health_text
from bot.presenter import data_sources_line
from core.brokers.mt5.convert import TICK_FLAG_BUY, TICK_FLAG_SELL, trade_ticks
from core.data.sources.market_context import MarketContext
from core.data.sources.orderflow import OrderFlowSnapshot, signals
from core.domain.clock import FixedClock

pytestmark = pytest.mark.timeout(90)  # a hung socket fails here, not after the suite default

BTC = recorded(BTC_FILE)


def _dq(result):
    return next(f for f in result.filters if f.name == "data_quality")


def test_order_flow_symbol_mapping_from_config():
    f = app().orderflow_feeds
    assert f.symbols["BTCUSDc"] == "BTC/USDT" and "XAUUSDc" not in f.symbols
    mc = MarketContext(app(), FixedClock(0), paper=False)
    assert mc.exchange is not None and mc.exchange.label("BTCUSDc") == "Binance BTC/USDT"
    assert mc.flow("XAUUSDc") == (None, None)  # no feed at all: the normal MT5 CFD case, no warning
    assert mc.recorded is None  # live: no recorded prints
    paper = MarketContext(app(), FixedClock(0), paper=True)
    assert paper.exchange is None and paper.recorded is not None  # a replay never calls the live exchange


def test_orderflow_replay_names_the_gap_and_uses_covered_flow():
    paper = MarketContext(app(), FixedClock(float(BTC["time"][-1]) + 5), paper=True)
    snap, err = paper.flow("BTCUSDc")
    assert err is None and snap.kind == "recorded" and snap.n_trades == len(BTC)
    assert snap.source == "recorded trades btcusdt-trades.parquet"
    paper.clock.set(ts("2025-06-03T10:00"))
    snap, err = paper.flow("BTCUSDc")
    assert snap is None
    assert "no recorded order flow covers 2025-06-03 10:00:00 UTC" in err and "2021-01-08 00:00:00 UTC" in err


def test_order_flow_replay_with_flow_against_one_without():
    """Same bar: without coverage the gap is named and the fade falls back; with flow it is a confluence input."""
    i = len(candles("BTCUSDc")["M5"]) - 300
    now = bar_close("BTCUSDc", i)
    shifted = BTC.copy()
    shifted["time"] += now - 10 - BTC["time"][-1]  # the recorded prints moved to end 10 s before the bar close
    snap = signals(shifted, now, 300.0, source="recorded trades btcusdt-trades.parquet", kind="recorded")
    gap = "no recorded order flow covers this time"
    without = run("BTCUSDc", now, orderflow_error=gap)
    with_flow = run("BTCUSDc", now, orderflow=snap)
    assert _dq(without).details["orderflow"]["fallback"] == "skip_confirmation"
    assert any(gap in w for w in without.warnings) and "order flow not used" in data_sources_line(without)
    assert _dq(with_flow).details["orderflow"]["available"]
    assert _dq(with_flow).details["orderflow"]["source"] == snap.source
    assert "order flow recorded trades btcusdt-trades.parquet 10s old" in data_sources_line(with_flow)
    if with_flow.range is not None:
        conf = next(f for f in with_flow.filters if f.name == "confluence")
        assert "orderflow" in conf.details and conf.details["orderflow"]["kind"] == "recorded"


@pytest.mark.parametrize("age,ok", [(0, True), (30 * 60, True), (30 * 60 + 1, False)])
def test_orderflow_freshness_boundary(age, ok):
    now = ts("2025-06-03T10:00")
    r = run("BTCUSDc", now, orderflow=OrderFlowSnapshot(-0.2, 40, 60, 100, now - age))
    assert _dq(r).details["orderflow"]["available"] is ok


def test_orderflow_from_the_future_is_refused():
    now = ts("2025-06-03T10:00")
    r = run("BTCUSDc", now, orderflow=OrderFlowSnapshot(-0.2, 40, 60, 100, now + 1))
    assert not _dq(r).details["orderflow"]["available"]


def test_order_flow_dried_up_buying_confirms_a_top_fade():
    base = dict(buy_volume=50.0, sell_volume=50.0, n_trades=100, timestamp=0.0)
    dried = OrderFlowSnapshot(0.3, recent_imbalance=-0.4, large_imbalance=-0.5, book_imbalance=-0.2, **base)
    lifting = OrderFlowSnapshot(-0.3, recent_imbalance=0.5, large_imbalance=0.6, book_imbalance=0.3, **base)
    assert dried.buying_dried_up() and not lifting.buying_dried_up()
    assert dried.fade_confirmed(upper=True) and lifting.fade_confirmed(upper=False)
    assert not dried.fade_confirmed(upper=False)
    assert dried.against(upper=True) > 0 > lifting.against(upper=True)
    # an old-style snapshot (imbalance only) scores exactly as before: -imbalance at the top
    assert OrderFlowSnapshot(0.4, 70, 30, 10, 0.0).against(upper=True) == pytest.approx(-0.4)


def test_order_flow_signals_large_trades_and_book():
    t = np.zeros(6, dtype=BTC.dtype)
    t["time"] = [1, 2, 3, 4, 5, 6]
    t["price"] = 100.0
    t["qty"] = [1, 1, 1, 1, 10, 12]
    t["side"] = [1, 1, 1, 1, -1, -1]
    s = signals(t, 6.0, 10.0, large_quantile=0.8, book=0.25)
    assert s.cumulative_delta == pytest.approx(4 - 22)
    assert s.large_imbalance == pytest.approx(-1.0)  # both big prints were sells
    assert s.book_imbalance == 0.25 and s.n_trades == 6


# -- MT5 tick flags ----------------------------------------------------------------------------------
MT5_TICK = np.dtype([("time", "<i8"), ("bid", "<f8"), ("ask", "<f8"), ("last", "<f8"), ("volume", "<u8"),
                     ("time_msc", "<i8"), ("flags", "<u4"), ("volume_real", "<f8")])


def _ticks(now: float, flags: list[int], offset: float = 0.0) -> np.ndarray:
    a = np.zeros(len(flags), dtype=MT5_TICK)
    a["time_msc"] = [int((now - 60 + i + offset) * 1000) for i in range(len(flags))]
    a["last"], a["bid"], a["volume_real"], a["flags"] = 2300.0, 2299.9, 1.0, flags
    return a


class _TickBroker:
    def __init__(self, ticks, offset=0.0):
        self.ticks, self.offset = ticks, offset

    def ticks_from(self, symbol, since, count):
        return trade_ticks(self.ticks, self.offset)


def test_orderflow_mt5_tick_flags_used_only_when_the_broker_sends_them():
    now = ts("2025-06-03T10:00")
    cfg = app_with({"orderflow_feeds": {"mt5_tick_symbols": ["XAUUSDc"]}})
    flagged = _ticks(now, [TICK_FLAG_BUY, TICK_FLAG_SELL, TICK_FLAG_SELL, 0], offset=3 * 3600)
    mc = MarketContext(cfg, FixedClock(now), broker=_TickBroker(flagged, offset=3 * 3600))
    asyncio.run(mc.refresh_ticks("XAUUSDc"))
    snap, err = mc.flow("XAUUSDc")
    assert err is None and snap.kind == "mt5_ticks" and snap.n_trades == 3  # the unflagged tick is ignored
    assert snap.imbalance == pytest.approx(-1 / 3) and snap.source == "MT5 tick flags XAUUSDc"
    bare = MarketContext(cfg, FixedClock(now), broker=_TickBroker(_ticks(now, [0, 0, 0])))
    asyncio.run(bare.refresh_ticks("XAUUSDc"))
    # no flags: no tick-direction flow at all (never guessed), shown in /health, no warning on every card
    assert bare.flow("XAUUSDc") == (None, None)
    assert "sends no buy/sell flags" in bare.status()["orderflow XAUUSDc"]["problem"]
    assert not any("XAUUSDc" in p for p in bare.problems())
    # a broker failing to answer is a real problem, though
    broken = MarketContext(cfg, FixedClock(now), broker=SimpleNamespace(ticks_from=_raise))
    asyncio.run(broken.refresh_ticks("XAUUSDc"))
    assert "tick history unavailable: terminal gone" in broken.flow("XAUUSDc")[1]
    assert any("terminal gone" in p for p in broken.problems())
    # paper mode never builds the tick source (the paper broker has no tick history)
    assert MarketContext(cfg, FixedClock(now), broker=_TickBroker(flagged), paper=True).ticks is None


def _raise(*a):
    raise RuntimeError("terminal gone")


def test_news_recorded_calendar_age_in_health():
    cal_day = ts("2026-01-27T12:00")
    live = MarketContext(app(), FixedClock(cal_day), paper=False)
    st = live.status()["news calendar (recorded)"]
    assert st["source"] == "forex_calendar_cache.json" and st["problem"] is None and st["age_seconds"] == 0
    live.clock.set(ts("2026-01-30T13:22:02"))  # downloaded 12:22:02.69: 59.99 minutes, within the limit
    assert live.problems() == []
    live.clock.set(ts("2026-01-30T13:23:00"))  # one minute later: past the 60-minute limit
    assert "news calendar (recorded): 61 minutes old (limit 60)" in live.problems()
    live.clock.set(ts("2025-06-03T10:00"))
    assert live.status()["news calendar (recorded)"]["problem"] == "the recorded calendar does not cover today"
    paper = MarketContext(app(), FixedClock(ts("2025-06-03T10:00")), paper=True)
    assert paper.problems() == []  # a replay outside the recorded week is a fact, not a health problem


# -- health and bookkeeping ------------------------------------------------------------------------
def test_order_flow_health_lines_and_fallback_counts():
    now = ts("2025-06-03T10:00")
    paper = MarketContext(app(), FixedClock(now), paper=True)
    res = run("BTCUSDc", now, orderflow_error=paper.flow("BTCUSDc")[1])
    paper.record(res)
    assert paper.fallbacks["orderflow:skip_confirmation"] == 1
    st = paper.status()
    assert st["orderflow BTCUSDc"]["problem"].startswith("no recorded order flow covers")
    assert paper.problems() == []  # a replay outside the recorded span is a named gap, not a health problem
    report = SimpleNamespace(broker_connected=True, ok=True, problems=[], broker="paper", monitor_running=True,
                             data_sources=st, fallbacks_used=dict(paper.fallbacks))
    text = health_text(report)
    assert "orderflow BTCUSDc: no data yet ⚠ no recorded order flow covers" in text
    assert "orderflow:skip_confirmation ×1" in text.split("Fallbacks used: ")[1]


def test_orderflow_mt5_copy_ticks_from_through_the_broker_port():
    """MT5Broker.ticks_from on the faithful fake terminal: server time to UTC, trade ticks only, flags to sides."""
    from broker_contract_fixtures import SYM, T0, scripted_bars
    from fakes import fake_mt5 as mt5

    from core.brokers.mt5.broker import MT5Broker

    mt5.fake_reset(server_offset_hours=2)
    bars = scripted_bars()
    bars["time"] += 7200
    mt5.fake_add_symbol(SYM, {mt5.TIMEFRAME_M5: bars})
    ticks = np.zeros(4, dtype=mt5.TICK_DTYPE)
    ticks["time_msc"] = [(T0 + 7200 + 10 + i) * 1000 for i in range(4)]
    ticks["last"], ticks["bid"], ticks["volume_real"] = 2000.5, 2000.4, [1.0, 2.0, 3.0, 4.0]
    trade = mt5.TICK_FLAG_LAST | mt5.TICK_FLAG_VOLUME
    ticks["flags"] = [trade | mt5.TICK_FLAG_BUY, trade | mt5.TICK_FLAG_SELL, mt5.TICK_FLAG_BID, trade]
    mt5.fake_set_ticks(SYM, ticks)
    b = MT5Broker(mt5, clock=FixedClock(T0 + 600), server_utc_offset_hours=2, sleep=lambda s: None)
    b.connect()
    got = b.ticks_from(SYM, T0, 100)
    assert list(got["time"]) == [T0 + 10, T0 + 11, T0 + 13]  # UTC; the bid-only tick is not a trade
    assert list(got["side"]) == [1, -1, 0] and list(got["qty"]) == [1.0, 2.0, 4.0]
    cfg = app_with({"orderflow_feeds": {"mt5_tick_symbols": ["XAUUSDc"]}})
    src = MarketContext(cfg, FixedClock(T0 + 60), broker=SimpleNamespace(
        ticks_from=lambda sym, since, n: b.ticks_from(SYM, since, n)))
    asyncio.run(src.refresh_ticks("XAUUSDc"))
    snap, err = src.flow("XAUUSDc")
    assert err is None and snap.n_trades == 2 and snap.imbalance == pytest.approx((1 - 2) / 3)
