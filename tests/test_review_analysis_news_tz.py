"""Review: a calendar time without a UTC offset must not be read in the host's local time zone.

`datetime.fromisoformat("2025-06-06T12:30:00").timestamp()` uses the machine's TZ, so the same file
gave a blackout at a different hour on a server in New York than on one in UTC. Times without an
offset are taken as UTC (the Forex Factory weekly export always carries -05:00/-04:00; pakonda
writes +00:00), times with one keep it.
"""
from __future__ import annotations

import time

import pytest
from analysis_helpers import ts

from core.data.sources.news import parse_calendar


@pytest.fixture
def new_york_host(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_naive_times_are_utc_whatever_the_host_zone(new_york_host):
    cal = parse_calendar([
        {"title": "NFP", "country": "USD", "date": "2025-06-06T12:30:00", "impact": "High"},
        {"title": "CPI", "country": "USD", "date": "2025-06-11T08:30:00-04:00", "impact": "High"},
    ], "test")
    times = {e.title: e.time for e in cal.events}
    assert times["NFP"] == ts("2025-06-06T12:30")
    assert times["CPI"] == ts("2025-06-11T12:30")


def test_naive_fetch_stamp_is_utc_too(new_york_host):
    cal = parse_calendar({"timestamp": "2025-06-06T00:00:00", "events": []}, "test")
    assert cal.fetched_at == ts("2025-06-06T00:00")
