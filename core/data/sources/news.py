"""Economic-calendar reader for the news blackout (Forex Factory weekly JSON, pakonda daily files).

Why a blackout at all: a high-impact release turns a quiet range into a breakout in seconds, and a
range scalper's stop sits just beyond the edge. The calendar is an *optional* source: when the file
is missing, unreadable or stale the news check falls back per `data_quality.news_calendar` (by
default: skip the news check, with a warning), so a broken download never stops trading silently
nor crashes the analysis. The reader caches the parsed file (by path, mtime and `cache_seconds`) and
keeps the last good copy if a later read fails.
"""
from __future__ import annotations

import json
import logging
import os
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from core.domain.clock import Clock

log = logging.getLogger(__name__)

# pakonda/FxCalendar spells impacts as Forex Factory's tooltip does; map them to the weekly JSON's words.
_IMPACT_WORDS = {
    "high impact expected": "High",
    "medium impact expected": "Medium",
    "low impact expected": "Low",
    "non-economic": "Holiday",
    "holiday": "Holiday",
    "high": "High",
    "medium": "Medium",
    "low": "Low",
}


@dataclass(frozen=True)
class NewsEvent:
    time: float  # epoch seconds UTC
    currency: str  # "USD", ... or "ALL" for events that move every market
    impact: str  # High / Medium / Low / Holiday
    title: str

    def affects(self, currencies: list[str] | tuple[str, ...]) -> bool:
        return self.currency == "ALL" or self.currency in currencies


@dataclass(frozen=True)
class NewsCalendar:
    """Events sorted by time, plus when the calendar was fetched (for the staleness check)."""

    events: tuple[NewsEvent, ...]
    fetched_at: float | None
    source: str
    _times: tuple[float, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.events, key=lambda e: e.time))
        object.__setattr__(self, "events", ordered)
        object.__setattr__(self, "_times", tuple(e.time for e in ordered))

    @property
    def first(self) -> float | None:
        return self._times[0] if self._times else None

    @property
    def last(self) -> float | None:
        return self._times[-1] if self._times else None

    def covers(self, t: float, margin_days: float = 1.0) -> bool:
        """True when t falls inside the calendar's span (a weekly file says nothing about next month)."""
        if not self._times:
            return False
        m = margin_days * 86400.0
        return self._times[0] - m <= t <= self._times[-1] + m

    def between(self, t0: float, t1: float, currencies=None, impacts=None) -> list[NewsEvent]:
        i = bisect_left(self._times, t0)
        out = []
        while i < len(self.events) and self._times[i] <= t1:
            e = self.events[i]
            if (impacts is None or e.impact in impacts) and (currencies is None or e.affects(currencies)):
                out.append(e)
            i += 1
        return out


# The currencies Forex Factory files events under; metals and crypto are quoted in them but have none.
CALENDAR_CURRENCIES = frozenset({"AUD", "CAD", "CHF", "CNY", "EUR", "GBP", "JPY", "NZD", "USD"})


def symbol_currencies(symbol: str, configured: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """The calendar currencies that move `symbol`: the configured list, else those in its name.

    Why the fallback: a symbol added without `currencies` would otherwise match only 'ALL' events and
    trade straight through its own central bank's decision. Broker suffixes ('c', '.m') are ignored.
    """
    if configured:
        return list(configured)
    letters = "".join(ch for ch in symbol.upper() if ch.isalpha())[:6]
    return [c for c in (letters[:3], letters[3:6]) if c in CALENDAR_CURRENCIES]


class CalendarFormatError(ValueError):
    pass


def _parse_time(text: str) -> float:
    """ISO time to epoch seconds; a time without an offset is UTC, never the host's local zone."""
    dt = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _impact(text: str) -> str:
    return _IMPACT_WORDS.get(str(text).strip().lower(), str(text).strip() or "Low")


def _event_from(obj: dict) -> NewsEvent:
    """One event in either spelling: FF weekly (`title/country/date/impact`) or pakonda (`event/currency/event_dt`)."""
    when = obj.get("date") or obj.get("event_dt")
    if not when:
        raise CalendarFormatError("an event has no date")
    cur = str(obj.get("country") or obj.get("currency") or "").upper()
    return NewsEvent(
        time=_parse_time(when),
        currency="ALL" if cur in ("ALL", "") else cur,
        impact=_impact(obj.get("impact", "")),
        title=str(obj.get("title") or obj.get("event") or ""),
    )


def parse_calendar(raw, source: str) -> NewsCalendar:
    """Parse a decoded calendar JSON: a bare FF list, or `{"timestamp"|"last_run", "events": [...]}`."""
    fetched = None
    if isinstance(raw, dict):
        stamp = raw.get("timestamp") or raw.get("last_run")
        if stamp:
            fetched = _parse_time(stamp)
        items = raw.get("events")
    else:
        items = raw
    if not isinstance(items, list):
        raise CalendarFormatError("no list of events found")
    return NewsCalendar(tuple(_event_from(e) for e in items if isinstance(e, dict)), fetched, source)


def load_calendar_file(path: str | Path) -> NewsCalendar:
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CalendarFormatError(f"{p}: invalid JSON at line {e.lineno}") from None
    return parse_calendar(raw, str(p))


def load_daily_directory(root: str | Path, start: float | None = None, end: float | None = None) -> NewsCalendar:
    """pakonda/FxCalendar layout: `root/YYYY/M/YYYY-MM-DD.json`, one file per day (UTC dates).

    Only files whose date lies in [start, end] (±1 day) are read, so a replay over one week does not
    parse years of files. Events are de-duplicated by (time, currency, title): consecutive daily
    snapshots repeat the days around them.
    """
    root = Path(root)
    events: dict[tuple, NewsEvent] = {}
    fetched: float | None = None
    lo = (start - 86400) if start is not None else None
    hi = (end + 86400) if end is not None else None
    for f in sorted(root.glob("*/*/*.json")):
        try:
            day = datetime.fromisoformat(f.stem + "T00:00:00+00:00").timestamp()
        except ValueError:
            continue
        if (lo is not None and day + 86400 < lo) or (hi is not None and day > hi):
            continue
        cal = load_calendar_file(f)
        for e in cal.events:
            events[(e.time, e.currency, e.title)] = e
        if cal.fetched_at is not None:
            fetched = max(fetched or cal.fetched_at, cal.fetched_at)
    return NewsCalendar(tuple(events.values()), fetched, str(root))


class NewsCalendarSource:
    """Cached access to a calendar file or pakonda directory, with last-good fallback.

    `get()` never raises: it returns the calendar, or None when nothing usable was ever read, and
    `last_error` says why (for the data-quality report).
    """

    def __init__(self, path: str | Path | None, cache_seconds: float, clock: Clock):
        self.path = Path(path) if path else None
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cached: NewsCalendar | None = None
        self._read_at: float | None = None
        self._mtime: float | None = None
        self.last_error: str | None = None

    def get(self) -> NewsCalendar | None:
        if self.path is None:
            self.last_error = "no calendar configured"
            return None
        now = self.clock.now()
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError:
            self.last_error = f"calendar file {self.path} is missing"
            log.warning("news calendar unavailable: %s", self.last_error)
            return self._cached
        fresh = self._read_at is not None and now - self._read_at < self.cache_seconds and mtime == self._mtime
        if self._cached is not None and fresh:
            return self._cached
        try:
            cal = load_daily_directory(self.path) if self.path.is_dir() else load_calendar_file(self.path)
        except (OSError, CalendarFormatError, ValueError) as e:
            self.last_error = f"calendar {self.path} could not be read: {e}"
            log.warning("news calendar unreadable, keeping last good copy: %s", self.last_error)
            return self._cached
        self._cached, self._read_at, self._mtime, self.last_error = cal, now, mtime, None
        return cal
