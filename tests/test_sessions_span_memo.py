"""The remembered session span (`core.domain.sessions.window_containing_or_before`) against the plain search.

The memo answers from the last window found while t lies between its start and the next local date's start;
these tests ask in orders that hit it and jump around it (forwards, backwards, across DST changes, for
sessions that span midnight or start in a DST gap) and compare every answer with the search alone."""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from core.config.loading import load_config
from core.domain import sessions as S


def _plain(name, definition, t):
    """The search as it was before the memo (days back from t's local date, first window started by t)."""
    day = S._local_day(t, definition.timezone)
    for offset in (0, -1, -2, -3, -4):
        w = S._window_on(name, definition.timezone, definition.start, definition.end, day + timedelta(days=offset))
        if w.start <= t:
            return w
    return w


@dataclass(frozen=True)
class _Def:
    timezone: str
    start: str
    end: str


ODD = {
    "overnight": _Def("Asia/Tokyo", "22:00", "07:00"),
    "gap_start": _Def("America/New_York", "02:30", "04:00"),  # 02:30 does not exist on the spring-forward day
    "fold_start": _Def("Europe/London", "01:30", "03:00"),  # 01:30 happens twice on the fall-back day
    "whole_day": _Def("UTC", "00:00", "00:00"),
    "lord_howe": _Def("Australia/Lord_Howe", "01:45", "02:15"),  # a half-hour DST shift
}


def _defs():
    cfg = load_config()
    return {**cfg.for_symbol(next(iter(cfg.symbols))).sessions.definitions, **ODD}


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_memo_answers_as_the_plain_search_in_any_order(seed):
    rng = random.Random(seed)
    defs = _defs()
    base = [_ts("2024-03-09T00:00"), _ts("2024-03-30T12:00"), _ts("2024-10-26T12:00"), _ts("2024-11-02T00:00"),
            _ts("2025-04-05T00:00"), _ts("2026-01-01T00:00")]
    times = []
    for b in base:  # walks across DST changes in 5-minute steps, plus random jumps and exact edges
        times += [b + 300.0 * k for k in range(0, 4 * 288)]
        times += [b + rng.uniform(-5 * 86400, 5 * 86400) for _ in range(300)]
    for name, d in defs.items():
        for day in range(-3, 10):
            w = _plain(name, d, base[0] + day * 86400.0)
            times += [w.start, w.start - 1e-6, w.end, w.end - 1e-6, w.start + 0.5]
    order = times + rng.sample(times, len(times)) + sorted(times, reverse=True)
    S._SPANS.clear()
    hits = 0
    for t in order:
        for name, d in defs.items():
            before = S._SPANS.get((name, d.timezone, d.start, d.end))
            got = S.window_containing_or_before(name, d, t)
            assert got == _plain(name, d, t), (name, t)
            hits += before is not None and before[0] <= t < before[1]
    assert hits > len(order)  # the memo is really used, not only the search


def test_active_sessions_and_label_unchanged_by_the_memo():
    cfg = load_config()
    sessions = cfg.for_symbol(next(iter(cfg.symbols))).sessions
    rng = random.Random(7)
    t0 = _ts("2025-03-01T00:00")
    for _ in range(3000):
        t = t0 + rng.uniform(0, 60 * 86400)
        want = [w for name, d in sessions.definitions.items() if (w := _plain(name, d, t)).contains(t)]
        assert S.active_sessions(sessions, t) == want
        assert S.session_label(sessions, t) == ("+".join(w.name for w in want) or "off_hours")


def test_a_bad_time_still_fails_as_before():
    d = ODD["overnight"]
    S.window_containing_or_before("overnight", d, _ts("2025-01-01T00:00"))  # a span is remembered
    with pytest.raises(ValueError):
        S.window_containing_or_before("overnight", d, float("nan"))
