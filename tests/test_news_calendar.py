"""News calendar: the real Forex Factory weekly file, the pakonda daily files, caching and fallbacks."""
from __future__ import annotations

import json
import os
from collections import Counter

from analysis_helpers import ts

from core.config.paths import market_data_dir
from core.data.sources.news import NewsCalendarSource, load_calendar_file, load_daily_directory
from core.domain.clock import FixedClock

FF = market_data_dir() / "cemerttu__ian_bot" / "forex_calendar_cache.json"
DAILY = market_data_dir() / "pakonda__FxCalendar" / "date"


def test_ff_weekly_file_parses_every_event_with_offsets():
    cal = load_calendar_file(FF)
    assert len(cal.events) == 86
    assert Counter(e.impact for e in cal.events) == {"Low": 59, "High": 14, "Medium": 12, "Holiday": 1}
    # "2026-01-28T14:00:00-05:00" is 19:00 UTC
    fomc = [e for e in cal.events if e.title == "FOMC Statement"]
    assert len(fomc) == 1 and fomc[0].time == ts("2026-01-28T19:00") and fomc[0].currency == "USD"
    assert cal.fetched_at == ts("2026-01-30T12:22:02.692979")
    assert list(e.time for e in cal.events) == sorted(e.time for e in cal.events)
    assert cal.covers(ts("2026-01-27T12:00")) and not cal.covers(ts("2026-03-01T12:00"))


def test_between_filters_currency_impact_and_window():
    cal = load_calendar_file(FF)
    hits = cal.between(ts("2026-01-28T18:30"), ts("2026-01-28T19:45"), currencies=["EUR", "USD"], impacts=["High"])
    assert sorted(e.title for e in hits) == ["FOMC Press Conference", "FOMC Statement", "Federal Funds Rate"]
    assert cal.between(ts("2026-01-28T18:30"), ts("2026-01-28T19:45"), currencies=["JPY"], impacts=["High"]) == []


def test_ff_bare_list_format(tmp_path):
    raw = json.loads(FF.read_text())["events"][:5]
    p = tmp_path / "ff_calendar_thisweek.json"
    p.write_text(json.dumps(raw))
    cal = load_calendar_file(p)
    assert len(cal.events) == 5 and cal.fetched_at is None


def test_pakonda_daily_files_map_impacts_and_dedupe():
    cal = load_daily_directory(DAILY, start=ts("2020-01-06T00:00"), end=ts("2020-01-10T23:59"))
    assert cal.events, "expected events in the first full week of 2020"
    assert {e.impact for e in cal.events} <= {"High", "Medium", "Low", "Holiday"}
    keys = [(e.time, e.currency, e.title) for e in cal.events]
    assert len(keys) == len(set(keys))
    nfp = [e for e in cal.events if e.title == "Non-Farm Employment Change"]
    assert nfp and nfp[0].impact == "High" and nfp[0].currency == "USD"
    assert nfp[0].time == ts("2020-01-10T13:30")
    assert all(ts("2020-01-05T00:00") <= e.time <= ts("2020-01-13T00:00") for e in cal.events)


def test_pakonda_all_currency_events_affect_every_symbol():
    cal = load_calendar_file(DAILY.parent / "last_update.json")
    opec = [e for e in cal.events if e.title == "OPEC-JMMC Meetings"]
    assert opec and opec[0].currency == "ALL" and opec[0].affects(["EUR", "USD"])


def test_source_caches_and_rereads_after_change(tmp_path):
    p = tmp_path / "cal.json"
    p.write_text(FF.read_text())
    clock = FixedClock(1000.0)
    src = NewsCalendarSource(p, cache_seconds=300, clock=clock)
    a = src.get()
    assert a is not None and src.last_error is None
    assert src.get() is a  # cached
    data = json.loads(p.read_text())
    data["events"] = data["events"][:3]
    p.write_text(json.dumps(data))
    os.utime(p, (2e9, 2e9))
    clock.advance(301)
    b = src.get()
    assert b is not a and len(b.events) == 3


def test_source_keeps_last_good_copy_and_reports_missing(tmp_path):
    p = tmp_path / "cal.json"
    p.write_text(FF.read_text())
    clock = FixedClock(0.0)
    src = NewsCalendarSource(p, cache_seconds=0, clock=clock)
    good = src.get()
    p.write_text("{ not json")
    os.utime(p, (2e9, 2e9))
    clock.advance(10)
    assert src.get() is good and "could not be read" in src.last_error
    p.unlink()
    assert src.get() is good and "is missing" in src.last_error
    fresh = NewsCalendarSource(tmp_path / "nope.json", 300, clock)
    assert fresh.get() is None and "missing" in fresh.last_error


def test_configured_calendar_is_not_reparsed_when_a_replay_clock_jumps():
    """The re-read cadence is wall time: a backtest's clock jumping days per step re-parsed the file on
    every order (the send-time news check), ~1 ms each."""
    from core.analysis.facade import configured_calendar
    from core.config.loading import load_config

    tcfg = load_config().for_symbol("XAUUSDc")
    clock = FixedClock(1_700_000_000.0)
    first, err = configured_calendar(tcfg, clock)
    assert first is not None and err is None
    for _ in range(5):
        clock.advance(3 * 86400)
        again, _ = configured_calendar(tcfg, clock)
        assert again is first
