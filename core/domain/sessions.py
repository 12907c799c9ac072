"""Trading-session windows in UTC, computed from the config's local wall-clock definitions.

Sessions are defined in their own time zone ("London 08:00-16:30 Europe/London") because that is
how desks open: the UTC time of the London open moves by an hour twice a year, and on different
dates from New York's. Converting through zoneinfo per local date keeps every window DST-correct.
Windows are cached per (session, local date) since the analysis asks for them on every call.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo


class SessionDefinition(Protocol):
    """What a session window needs from the config. A Protocol, so the domain stays below config:
    `core.config`'s pydantic sections satisfy it without this module importing them."""

    timezone: str
    start: str
    end: str


class Sessions(Protocol):
    definitions: Mapping[str, SessionDefinition]


@dataclass(frozen=True)
class SessionWindow:
    name: str
    start: float  # epoch seconds UTC
    end: float

    def contains(self, t: float) -> bool:
        return self.start <= t < self.end


def _hhmm(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


@lru_cache(maxsize=4096)
def _window_on(name: str, zone: str, start: str, end: str, local_day: date) -> SessionWindow:
    tz = ZoneInfo(zone)
    s = datetime.combine(local_day, _hhmm(start), tzinfo=tz)
    e_day = local_day if _hhmm(end) > _hhmm(start) else local_day + timedelta(days=1)
    e = datetime.combine(e_day, _hhmm(end), tzinfo=tz)
    return SessionWindow(name, s.timestamp(), e.timestamp())


def _local_day(t: float, zone: str) -> date:
    return datetime.fromtimestamp(t, ZoneInfo(zone)).date()


def _search(name: str, definition: SessionDefinition, t: float) -> tuple[SessionWindow, date]:
    """The window that contains t, or else the latest one that started before t, and its local date."""
    day = _local_day(t, definition.timezone)
    for offset in (0, -1, -2, -3, -4):
        d = day + timedelta(days=offset)
        w = _window_on(name, definition.timezone, definition.start, definition.end, d)
        if w.start <= t:
            return w, d
    return w, d  # pragma: no cover - a window starts at most a day before its local date


# (name, zone, start, end) -> (start of the window last found, start of the window one local day later, it)
_SPANS: dict[tuple[str, str, str, str], tuple[float, float, SessionWindow]] = {}
_SPANS_MAX = 256


def window_containing_or_before(name: str, definition: SessionDefinition, t: float) -> SessionWindow:
    """The session window that contains t, or else the latest one that started before t.

    That is the window with the latest start at or before t: a session's windows start once per local
    date, 23 to 25 hours apart, so their starts rise with the date. The answer is therefore the same window
    for every t from its start up to the next date's start; that span is remembered per session, because
    the analysis, the send-time checks and the replay ask about the same session at nearby times (a zone
    lookup and a few date hashes each otherwise)."""
    key = (name, definition.timezone, definition.start, definition.end)
    hit = _SPANS.get(key)
    if hit is not None and hit[0] <= t < hit[1]:
        return hit[2]
    w, d = _search(name, definition, t)
    nxt = _window_on(name, definition.timezone, definition.start, definition.end, d + timedelta(days=1))
    if w.start <= t < nxt.start:
        if len(_SPANS) >= _SPANS_MAX:
            _SPANS.clear()
        _SPANS[key] = (w.start, nxt.start, w)
    return w


def active_sessions(sessions: Sessions, t: float) -> list[SessionWindow]:
    """Every configured session whose window contains t (overlaps such as London/New York included)."""
    out = []
    for name, definition in sessions.definitions.items():
        w = window_containing_or_before(name, definition, t)
        if w.contains(t):
            out.append(w)
    return out


def session_label(sessions: Sessions, t: float) -> str:
    """A short label for reports: 'london+new_york', or 'off_hours' when no session is open."""
    names = [w.name for w in active_sessions(sessions, t)]
    return "+".join(names) if names else "off_hours"
