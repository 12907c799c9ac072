"""RangeScalpingRiskFilters: each check's pass and fail path, on real XAUUSD, EURUSD and BTC bars."""
from __future__ import annotations

import numpy as np
import pytest
from analysis_helpers import SYMBOLS, app, app_with, bar_close, candles, context_at, run, ts

from core.analysis.filters.risk_filters import RangeScalpingRiskFilters
from core.brokers.base import Tick
from core.data.sources.news import NewsCalendar, NewsEvent
from core.data.sources.orderflow import OrderFlowSnapshot

F = RangeScalpingRiskFilters()


def _scan(symbol, pred, step=37, start=500):
    """First real bar (sampled) whose analysis satisfies pred; the test fails if none exists."""
    n = len(candles(symbol)["M5"])
    for i in range(start, n, step):
        r = run(symbol, bar_close(symbol, i))
        if pred(r):
            return i, r
    pytest.fail(f"no bar in {symbol} matched")


def _f(result, name):
    return next(f for f in result.filters if f.name == name)


# -- data quality ---------------------------------------------------------------------------------
def test_data_quality_passes_on_a_fresh_replay_bar():
    ctx, _, _ = context_at("XAUUSDc", ts("2025-06-03T10:00"))
    r = F.check_data_quality(ctx)
    assert r.passed and r.details["candles"]["available"] and r.details["candles"]["age_minutes"] == 0
    assert r.details["vwap"]["available"]
    assert ctx.fallbacks == {"orderflow": "skip_confirmation", "news_calendar": "skip_news_check"}


def test_stale_candles_block_the_trade():
    now = ts("2025-06-03T10:00")
    ctx, _, _ = context_at("XAUUSDc", now)
    ctx.now = now + 45 * 60  # the feed stopped 45 minutes ago
    r = F.check_data_quality(ctx)
    assert not r.passed and r.blocking
    assert "not fresh enough" in r.reason and "closed at 10:00 UTC (45 minutes ago)" in r.reason
    assert "the one closing at 10:05 UTC is missing" in r.reason
    assert r.details["candles"]["fallback"] == "BLOCK_TRADE"


def test_stale_vwap_falls_back_to_the_window_vwap():
    # the last closed bar is the newest that should exist (candles fresh), but 4 minutes is past a 3-minute VWAP limit
    now = ts("2025-06-03T10:00")
    cfg = app_with({"data_quality": {"vwap": {"required": True, "max_age_minutes": 3, "fallback": "use_session_vwap"}}})
    res = run("XAUUSDc", now + 4 * 60, cfg=cfg)
    dq = _f(res, "data_quality")
    assert dq.passed and dq.details["vwap"]["fallback"] == "use_session_vwap"
    assert dq.details["candles"]["available"]
    assert any("VWAP of the whole range window" in w for w in res.warnings)


def test_candle_freshness_at_each_boundary():
    """Closed bar: the newest that should exist (not the forming one); tick: at most the configured 2 minutes."""
    now = ts("2025-06-03T10:00")
    # 4:59 into the forming bar: still fresh (the seed's forming-bar reading would call it ~5 minutes old)
    ctx, _, _ = context_at("XAUUSDc", now + 299)
    assert F.check_data_quality(ctx).details["candles"]["available"]
    # exactly at the next close with that bar missing: stale
    data = {tf: a[a["time"] < now - 300] for tf, a in candles("XAUUSDc").items()}  # the 09:55-10:00 bar never came
    ctx, _, _ = context_at("XAUUSDc", now, data=data)
    r = F.check_data_quality(ctx)
    assert not r.passed and "the one closing at 10:00 UTC is missing" in r.reason
    # the feed's tick at exactly the limit passes, one second past it blocks
    lim = app().data_quality.mt5_candles.max_age_minutes * 60
    ctx, _, _ = context_at("XAUUSDc", now + 200)
    ctx.feed_tick_time = now + 200 - lim
    assert F.check_data_quality(ctx).details["candles"]["available"]
    ctx.feed_tick_time = now + 200 - lim - 1
    r = F.check_data_quality(ctx)
    assert not r.passed and "the feed's last tick is" in r.reason


def test_vwap_too_young_right_after_midnight():
    ctx, _, _ = context_at("BTCUSDc", ts("2025-05-20T00:10"))
    r = F.check_data_quality(ctx)
    assert r.details["vwap"]["available"] is False and "only 2 bars" in r.details["vwap"]["problem"]
    assert ctx.fallbacks["vwap"] == "use_session_vwap"


def test_orderflow_fresh_is_used_and_stale_is_skipped():
    now = ts("2025-06-03T10:00")
    fresh = OrderFlowSnapshot(-0.4, 30.0, 70.0, 500, now - 60)
    ctx, _, _ = context_at("BTCUSDc", now, orderflow=fresh)
    assert F.check_data_quality(ctx).details["orderflow"]["available"]
    assert "orderflow" not in ctx.fallbacks
    stale = OrderFlowSnapshot(-0.4, 30.0, 70.0, 500, now - 3600)
    ctx2, _, _ = context_at("BTCUSDc", now, orderflow=stale)
    r = F.check_data_quality(ctx2)
    assert r.passed and ctx2.fallbacks["orderflow"] == "skip_confirmation"
    assert "60 minutes old" in r.details["orderflow"]["problem"]
    assert any("Order flow: the last trade print is 60 minutes old" in w for w in ctx2.warnings)
    assert not any("Order flow" in w for w in ctx.warnings)


def test_orderflow_changes_confirmation_direction():
    """A fade at the top is confirmed by sellers, contradicted by buyers."""
    i, res = _scan("BTCUSDc", lambda r: r.range is not None and r.range.critical_gaps.zone_of(
        float(candles("BTCUSDc")["M5"]["close"][np.searchsorted(candles("BTCUSDc")["M5"]["time"], r.as_of) - 1])) == "upper")
    now = bar_close("BTCUSDc", i)
    sells = context_at("BTCUSDc", now, orderflow=OrderFlowSnapshot(-0.8, 10, 90, 100, now - 30))[0]
    buys = context_at("BTCUSDc", now, orderflow=OrderFlowSnapshot(0.8, 90, 10, 100, now - 30))[0]
    for c in (sells, buys):
        F.check_data_quality(c)
    conf_sell = F.check_3_confluence_rule_weighted(sells)[2]["confirmation"]
    conf_buy = F.check_3_confluence_rule_weighted(buys)[2]["confirmation"]
    assert conf_sell > conf_buy


# -- sessions -------------------------------------------------------------------------------------
@pytest.mark.parametrize("when,opened", [("2025-06-02T07:05", 5), ("2025-01-06T08:10", 10)])
def test_london_open_is_blocked_in_summer_and_winter(when, opened):
    ctx, _, _ = context_at("XAUUSDc", ts(when))
    r = F.check_session_filters(ctx)
    assert not r.passed and f"London opened {opened} minutes ago" in r.reason


def test_new_york_open_block_and_pass():
    ctx, _, _ = context_at("XAUUSDc", ts("2025-06-03T12:10"))  # NY 08:10 EDT
    r = F.check_session_filters(ctx)
    assert not r.passed and "New York opened 10 minutes ago" in r.reason
    ctx, _, _ = context_at("XAUUSDc", ts("2025-06-03T12:30"))
    r = F.check_session_filters(ctx)
    assert r.passed and "London and New York" in r.reason


def test_off_hours_and_weekend_fail_but_btc_may_trade_outside_sessions():
    ctx, _, _ = context_at("XAUUSDc", ts("2025-06-03T06:30"))  # after Tokyo, before London (BST 07:00)
    r = F.check_session_filters(ctx)
    assert not r.passed and "None of the sessions I trade" in r.reason
    ctx, _, _ = context_at("XAUUSDc", ts("2025-06-07T12:00"))  # Saturday
    r = F.check_session_filters(ctx)
    assert not r.passed and "weekend" in r.reason
    ctx, _, _ = context_at("BTCUSDc", ts("2025-05-24T06:30"))  # Saturday, off-hours: BTC trades anyway
    r = F.check_session_filters(ctx)
    assert r.passed and "allowed to trade outside sessions" in r.reason


# -- news -----------------------------------------------------------------------------------------
def _cal(*events, fetched=None):
    return NewsCalendar(tuple(events), fetched, "test")


def test_news_blackout_blocks_before_and_after_a_high_impact_event():
    now = ts("2025-06-03T10:00")
    ev = NewsEvent(now + 12 * 60, "USD", "High", "Non-Farm Employment Change")
    ctx, _, _ = context_at("XAUUSDc", now, news=_cal(ev, fetched=now - 3600))
    F.check_data_quality(ctx)
    r = F.check_news_blackout(ctx)
    assert not r.passed and "'Non-Farm Employment Change' is due in 12 minutes" in r.reason
    ev2 = NewsEvent(now - 20 * 60, "USD", "High", "CPI m/m")
    ctx, _, _ = context_at("XAUUSDc", now, news=_cal(ev2, fetched=now - 3600))
    F.check_data_quality(ctx)
    assert "came out 20 minutes ago" in F.check_news_blackout(ctx).reason


def test_news_ignores_other_currencies_low_impact_and_far_events():
    now = ts("2025-06-03T10:00")
    events = (NewsEvent(now + 5 * 60, "JPY", "High", "BOJ"), NewsEvent(now + 5 * 60, "USD", "Low", "Redbook"),
              NewsEvent(now + 3 * 3600, "USD", "High", "FOMC"))
    ctx, _, _ = context_at("XAUUSDc", now, news=_cal(*events, fetched=now - 60))
    F.check_data_quality(ctx)
    r = F.check_news_blackout(ctx)
    assert r.passed and r.reason == "No high-impact news nearby."


def test_news_missing_calendar_falls_back_to_skip():
    ctx, _, _ = context_at("XAUUSDc", ts("2025-06-03T10:00"), news=None, news_error="calendar file x is missing")
    dq = F.check_data_quality(ctx)
    assert dq.passed and ctx.fallbacks["news_calendar"] == "skip_news_check"
    r = F.check_news_blackout(ctx)
    assert r.passed and not r.blocking and "News not checked" in r.reason
    assert any("calendar file x is missing" in w for w in ctx.warnings)


def test_news_calendar_required_blocks_when_configured():
    cfg = app_with({"data_quality": {"news_calendar": {"required": True, "max_age_minutes": 60, "fallback": "BLOCK_TRADE"}}})
    ctx, _, _ = context_at("XAUUSDc", ts("2025-06-03T10:00"), cfg=cfg, news=None)
    dq = F.check_data_quality(ctx)
    assert not dq.passed and "no news calendar loaded" in dq.reason


def test_real_ff_calendar_blocks_eurusd_before_the_fomc():
    """EURUSD M15 bars of the real calendar week; FOMC at 19:00 UTC on 2026-01-28."""
    from core.config.paths import resolve_path
    from core.data.sources.news import load_calendar_file

    cfg = app_with({}, {"EURUSDc": {"range_detection": {"timeframe": "M15", "nested_timeframes": ["M15", "H1"]}}})
    cal = load_calendar_file(resolve_path(cfg.news.calendar_path))
    data = {"M15": candles("EURUSDc")["M15"], "H1": candles("EURUSDc")["H1"]}
    before = run("EURUSDc", ts("2026-01-28T18:45"), cfg, data=data, news=cal)
    f = _f(before, "news")
    assert not f.passed and "USD news 'Federal Funds Rate' is due in 15 minutes" in f.reason
    assert not before.passed
    later = run("EURUSDc", ts("2026-01-28T21:00"), cfg, data=data, news=cal)
    assert _f(later, "news").passed


# -- activity -------------------------------------------------------------------------------------
def test_activity_passes_on_real_gold_and_fails_on_a_wide_spread():
    now = ts("2025-06-03T10:00")
    ctx, _, _ = context_at("XAUUSDc", now)
    assert F.check_trade_activity_criteria(ctx).passed
    p = float(ctx.bars.close[-1])
    ctx.tick = Tick(time=now, bid=p - 5, ask=p + 5)  # a 10-dollar spread on gold
    r = F.check_trade_activity_criteria(ctx)
    assert not r.passed and "the spread is" in r.reason and "costs would eat the edge" in r.reason


def test_activity_fails_on_a_dead_market():
    cfg = app_with({"activity": {"min_atr_pct": 5.0, "min_tick_volume": 1e9}})
    ctx, _, _ = context_at("EURUSDc", bar_close("EURUSDc", 5000), cfg=cfg)
    r = F.check_trade_activity_criteria(ctx)
    assert not r.passed and "too quiet" in r.reason and "too few ticks" in r.reason


# -- range validity, false range, confluence -------------------------------------------------------
@pytest.mark.parametrize("symbol", SYMBOLS)
def test_range_validity_pass_path(symbol):
    _, r = _scan(symbol, lambda r: r.range is not None and r.range.validated and not r.range.invalidation_signals)
    f = _f(r, "range_validity")
    assert f.passed and "is intact" in f.reason


def test_range_validity_fails_without_a_range():
    cfg = app_with({}, {"XAUUSDc": {"range_width": {"min_pct": 9.0, "max_pct": 20.0}}})
    r = run("XAUUSDc", bar_close("XAUUSDc", 20000), cfg)
    f = _f(r, "range_validity")
    assert not f.passed and "too tight" in f.reason


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_false_range_pass_and_trend_fail(symbol):
    _, ok = _scan(symbol, lambda r: r.range is not None and _f(r, "false_range").passed)
    assert "No trend" in _f(ok, "false_range").reason
    _, bad = _scan(symbol, lambda r: r.range is not None and not _f(r, "false_range").passed)
    reason = _f(bad, "false_range").reason
    assert any(s in reason for s in ("trend inside the box", "one side is in control", "looks like a breakout"))


def test_false_range_flags_repeated_closes_beyond_the_edges():
    _, r = _scan("XAUUSDc", lambda r: r.range is not None
                 and "looks like a breakout" in _f(r, "false_range").reason, step=11)
    f = _f(r, "false_range")
    assert f.details["closes_beyond_edges_last_hour"] >= app().false_range.max_closes_beyond_edges
    assert "Price has closed outside the range" in f.reason


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_confluence_pass_and_fail(symbol):
    _, good = _scan(symbol, lambda r: r.range is not None and _f(r, "confluence").passed, step=13)
    g = _f(good, "confluence")
    assert g.details["score"] >= 60 and good.confluence_score == g.details["score"]
    w = app().confluence.weights
    expect = sum(g.details[k] * v for k, v in w.items()) / sum(w.values())
    assert g.details["score"] == pytest.approx(expect, abs=0.01)
    _, bad = _scan(symbol, lambda r: r.range is not None and not _f(r, "confluence").passed)
    assert "below the 60 needed" in _f(bad, "confluence").reason


def test_evaluate_all_returns_every_blocking_failure():
    ctx, det, _ = context_at("XAUUSDc", ts("2025-06-02T07:05"))
    results, _, _ = F.evaluate_all(ctx, det)
    failures = [r for r in results if not r.passed and r.blocking]
    assert "session" in [f.name for f in failures]
    assert all(not f.passed and f.blocking for f in failures)
