"""Review: a symbol added to the config without a `currencies` list still gets a news blackout.

`check_news_blackout` used `spec.currencies or []`, and an empty list matches only 'ALL' events, so a
symbol configured without currencies silently traded straight through NFP. The currencies now fall
back to the ones in the symbol's name (XAUUSD -> USD, EURUSD -> EUR+USD, BTCUSD -> USD).
"""
from __future__ import annotations

import pytest
from analysis_helpers import context_at, ts

from core.analysis.filters.risk_filters import RangeScalpingRiskFilters
from core.data.sources.news import NewsCalendar, NewsEvent, symbol_currencies


@pytest.mark.parametrize("symbol,expected", [
    ("XAUUSDc", ["USD"]), ("EURUSDc", ["EUR", "USD"]), ("BTCUSDc", ["USD"]), ("GBPJPY.m", ["GBP", "JPY"]),
    ("eurusd", ["EUR", "USD"]), ("US30", []),
])
def test_currencies_come_from_the_symbol_name_when_not_configured(symbol, expected):
    assert symbol_currencies(symbol, []) == expected


def test_configured_currencies_win():
    assert symbol_currencies("XAUUSDc", ["USD", "EUR"]) == ["USD", "EUR"]


@pytest.mark.parametrize("symbol,currency", [("XAUUSDc", "USD"), ("EURUSDc", "EUR")])
def test_blackout_applies_to_a_symbol_configured_without_currencies(symbol, currency):
    now = ts("2025-06-03T12:00") if symbol == "XAUUSDc" else ts("2026-06-03T12:00")
    ev = NewsEvent(now + 10 * 60, currency, "High", "Rate decision")
    cal = NewsCalendar((ev,), now - 3600, "test")
    ctx, _, _ = context_at(symbol, now, news=cal)
    ctx.spec = ctx.spec.model_copy(update={"currencies": []})
    r = RangeScalpingRiskFilters().check_news_blackout(ctx)
    assert not r.passed and "Rate decision" in r.reason and "due in 10 minutes" in r.reason
