"""A replay hands the execution engine the news calendar once (`LiveParts._send_calendar`).

Live, the send-time blackout check asks the configured calendar's shared cached source on every order (a
path resolve and a stat of the file). A replay reads the file once for the run, for its analysis and its
send check alike; the send check may use that read only if it holds the very events, and so gives the very
verdict, that asking the live source per order would give.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from core.analysis.facade import configured_calendar
from core.backtest.live import LiveParts
from core.config.loading import load_config, validate_config_dict
from core.config.model import deep_merge
from core.config.paths import market_data_dir
from core.data.loaders import load_candles
from core.domain.clock import FixedClock
from core.domain.timeframes import Timeframe
from core.trading.order_checks import news_blackout_now, time_rules_block

SYMBOL = "XAUUSDc"


def _candles():
    c = load_candles(market_data_dir() / "budimanlai__forex-tick/data/XAUUSD_M5.csv", tz_offset_hours=2)
    return c[:300].copy()


def _cfg(calendar_path: str | None = None):
    base = load_config()
    if calendar_path is None:
        return base
    raw = deep_merge(base.model_dump(mode="json"), {"news": {"calendar_path": calendar_path}})
    cfg, issues = validate_config_dict(raw)
    assert cfg is not None, issues
    return cfg


def _parts(cfg):
    return LiveParts(cfg, SYMBOL, _candles(), Timeframe.M5)


def test_the_replay_hook_gives_the_configured_calendar():
    cfg = _cfg()
    assert cfg.for_symbol(SYMBOL).news.enabled and cfg.for_symbol(SYMBOL).news.calendar_path
    parts = _parts(cfg)
    try:
        hook = parts.execution.news_calendar
        assert hook is not None, "the replay does not hand its calendar to the execution engine"
        live, _ = configured_calendar(cfg.for_symbol(SYMBOL))
        mine = hook(SYMBOL)
        assert live is not None and mine is not None
        assert mine.events == live.events and len(mine.events) > 0
        assert hook(SYMBOL) is mine, "read once for the whole replay"
        assert parts._calendar()[0] is mine, "the analysis and the send check judge by the same calendar"
    finally:
        parts.shutdown()


@pytest.mark.parametrize("minutes", [-45, -25, -5, 0, 10, 29, 31, 60])
def test_the_send_check_says_the_same_with_the_hook(tmp_path, minutes):
    event = 1_746_003_600.0  # 2025-04-30 09:00 UTC, a Wednesday inside the London session
    path = tmp_path / "calendar.json"
    path.write_text(json.dumps([{"title": "Non-Farm Employment Change", "country": "USD",
                                 "date": datetime.fromtimestamp(event, UTC).isoformat(), "impact": "High"}]),
                    encoding="utf-8")
    cfg = _cfg(str(path))
    parts = _parts(cfg)
    try:
        clock = FixedClock(event + minutes * 60)
        hook = parts.execution.news_calendar
        live = news_blackout_now(cfg, SYMBOL, clock)
        assert news_blackout_now(cfg, SYMBOL, clock, hook) == live
        assert time_rules_block(cfg, SYMBOL, clock, hook) == time_rules_block(cfg, SYMBOL, clock)
        if -30 <= minutes <= 30:  # inside the blackout: the check can fail (it is not vacuous)
            assert live is not None and "Non-Farm" in live
        else:
            assert live is None
    finally:
        parts.shutdown()


def test_a_missing_calendar_is_no_calendar_either_way(tmp_path):
    cfg = _cfg(str(tmp_path / "absent.json"))
    parts = _parts(cfg)
    try:
        clock = FixedClock(1_746_003_600.0)
        assert parts.execution.news_calendar(SYMBOL) is None
        assert news_blackout_now(cfg, SYMBOL, clock, parts.execution.news_calendar) is None
        assert news_blackout_now(cfg, SYMBOL, clock) is None
    finally:
        parts.shutdown()
