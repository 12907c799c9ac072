"""The range-edge finders hand back where the touch window starts, not the window; touch counts are Python ints.

The reference below is the detector's candidate path as it was: each finder built its touch window as a
`Bars` (`tail` / `since`), `_measure` counted touches on it, and `count_touches` returned numpy's counts. Both
must give equal candidates (edges, start, width, counts, validated), equal no-range answers and equal built
ranges, on real windows of every symbol and on NaN, flat, short and empty windows.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from analysis_helpers import SYMBOLS, app, bar_close, bars_with, candles, views_at

from core.analysis.range.bars import Bars
from core.analysis.range.detector import (
    _DAY,
    _HOUR,
    _MAX,
    _MIN,
    RangeBoundaryDetector,
    RangeCandidate,
    _day_start,
    _pivots,
)
from core.analysis.range.lastvalues import atr_last
from core.domain.models import NoRange
from core.domain.sessions import window_containing_or_before


# -- the previous path, verbatim but for `self` -> `det` ------------------------------------------------
def _span_text(bars: Bars) -> str:
    hours = len(bars) * bars.seconds / _HOUR
    if hours >= 48:
        return f"{hours / 24:.0f} days"
    return f"{hours:.0f} hours" if hours >= 2 else f"{hours * 60:.0f} minutes"


def _count_touches(high, low, top, bottom, tol):
    near_top = high >= top - tol
    near_bot = low <= bottom + tol
    top_n = int(near_top[0]) + np.count_nonzero(near_top[1:] > near_top[:-1]) if len(high) else 0
    bot_n = int(near_bot[0]) + np.count_nonzero(near_bot[1:] > near_bot[:-1]) if len(low) else 0
    return top_n, bot_n


def _dynamic_edges(det, bars):
    need = det.rd.min_candles
    if len(bars) < need:
        return det._too_few(bars, need, "swing range")
    w = bars.tail(det.rd.lookback_bars)
    n = det.rd.swing_fractal_bars
    sh = _pivots(w.high, n, higher=True)
    sl = _pivots(w.low, n, higher=False)
    high = float(_MAX(sh)) if len(sh) else math.nan
    low = float(_MIN(sl)) if len(sl) else math.nan
    has_h = math.isfinite(high) or (len(sh) > 0 and bool(np.isfinite(sh).any()))
    has_l = math.isfinite(low) or (len(sl) > 0 and bool(np.isfinite(sl).any()))
    if not (has_h and has_l):
        missing = "swing high" if not has_h else "swing low"
        return NoRange(
            reason="no_swings",
            message=f"No {missing} has formed in the last {_span_text(w)}: price is moving one way, "
            "so there are no edges to trade against.",
            details={"swing_highs": int(np.isfinite(sh).sum()), "swing_lows": int(np.isfinite(sl).sum())},
        )
    if high <= low:
        return NoRange(
            reason="no_swings",
            message="The swing highs sit below the swing lows: price is gapping, not ranging.",
            details={"swing_high": high, "swing_low": low},
        )
    return high, low, float(w.time[0]), w


def _session_edges(det, bars, as_of):
    name = det.rd.session_range
    definition = det.cfg.sessions.definitions.get(name)
    if definition is None:
        return NoRange(reason="no_session", message=f"The session '{name}' is not defined in the config.")
    win = window_containing_or_before(name, definition, as_of - 1.0)
    inside = bars.span(win.start, min(win.end, as_of))
    have = max(0, inside.stop - inside.start)
    need = max(3, int(_HOUR // bars.seconds))
    if have < need:
        label = name.replace("_", " ").title()
        return NoRange(
            reason="too_few_candles",
            message=f"The {label} session has only {have} closed {bars.timeframe} candles "
            f"so far; I need {need} to know its high and low.",
            details={"have": have, "need": need, "session_start": win.start},
        )
    return float(_MAX(bars.high[inside])), float(_MIN(bars.low[inside])), win.start, bars.since(win.start)


def _previous_day_edges(det, bars, as_of):
    if len(bars) == 0:
        return det._too_few(bars, 1, "previous day's high/low")
    today = _day_start(as_of)
    t = bars.time[:int(bars.time.searchsorted(today, side="left"))]
    if len(t) == 0:
        return NoRange(
            reason="too_few_candles",
            message="There is no complete previous trading day in the data yet.",
            details={"timeframe": bars.timeframe},
        )
    need = max(2, int(4 * _HOUR // bars.seconds))
    day0 = _day_start(float(t[-1]))
    for _ in range(5):
        i = int(t.searchsorted(day0, side="left"))
        prev = slice(i, int(t.searchsorted(day0 + _DAY, side="left")))
        have = max(0, prev.stop - i)
        if have >= need or i == 0:
            break
        day0 = _day_start(float(t[i - 1]))
    if have < need:
        return NoRange(
            reason="too_few_candles",
            message=f"The previous trading day has only {have} {bars.timeframe} candles; "
            "its high and low are not meaningful.",
            details={"have": have, "need": need},
        )
    return float(_MAX(bars.high[prev])), float(_MIN(bars.low[prev])), float(day0), bars.since(day0)


def _measure(det, range_type, bars, high, low, start, touch_bars, atr, apply_width_limits):
    mid = (high + low) / 2.0
    width = high - low
    width_pct = width / mid * 100.0 if mid else 0.0
    if apply_width_limits:
        failure = det._width_failure(range_type, high, low, width_pct)
        if failure is not None:
            return failure
    tol = det.rd.touch_tolerance_atr * atr
    top, bottom = _count_touches(touch_bars.high, touch_bars.low, high, low, tol)
    return RangeCandidate(det, range_type, bars, high, low, start, atr, mid, width, width_pct, top, bottom)


def _reference(det, bars, range_type, atr, as_of, apply_width_limits=True):
    finder = {"dynamic": lambda: _dynamic_edges(det, bars), "session": lambda: _session_edges(det, bars, as_of),
              "previous_day": lambda: _previous_day_edges(det, bars, as_of)}[range_type]
    found = finder()
    if isinstance(found, NoRange):
        return found
    return _measure(det, range_type, bars, *found, atr, apply_width_limits)


# -- the comparison -----------------------------------------------------------------------------------
_FIELDS = ("range_type", "range_high", "range_low", "start", "atr", "mid", "width", "range_width_pct", "top",
           "bottom", "validated")


def _same(a, b) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def _check(det, bars, atr, as_of) -> int:
    built = 0
    for kind in ("dynamic", "session", "previous_day"):
        for limits in (True, False):
            got = det.detect_candidate(bars, kind, atr=atr, as_of=as_of, apply_width_limits=limits)
            want = _reference(det, bars, kind, atr, as_of, limits)
            assert type(got) is type(want), (kind, got, want)
            if isinstance(want, NoRange):
                assert got.model_dump_json() == want.model_dump_json()
                continue
            for f in _FIELDS:
                assert _same(getattr(got, f), getattr(want, f)), (kind, f)
            assert type(got.top) is int and type(got.bottom) is int and type(got.validated) is bool
            assert got.bars is bars
            assert got.build().model_dump_json() == want.build().model_dump_json()
            built += 1
    return built


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_candidates_equal_the_window_building_path_on_real_bars(symbol):
    tcfg = app().for_symbol(symbol)
    det = RangeBoundaryDetector(tcfg, symbol)
    period = tcfg.effective_atr.atr_period
    n = len(candles(symbol)["M5"])
    built = 0
    for i in np.linspace(300, n - 1, 60).astype(int):
        now = bar_close(symbol, int(i)) + (0 if i % 3 else 150.0)  # on and between bar closes
        for bars in views_at(symbol, now).values():
            built += _check(det, bars, atr_last(bars.high, bars.low, bars.close, period), now)
    assert built > 300, built


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_candidates_equal_the_window_building_path_on_odd_windows(symbol):
    tcfg = app().for_symbol(symbol)
    det = RangeBoundaryDetector(tcfg, symbol)
    n = len(candles(symbol)["M5"])
    for i in np.linspace(600, n - 1, 6).astype(int):
        now = bar_close(symbol, int(i))
        for bars in views_at(symbol, now).values():
            atr = atr_last(bars.high, bars.low, bars.close, tcfg.effective_atr.atr_period)
            nan_high = bars.high.copy()
            nan_high[::7] = np.nan
            nan_low = bars.low.copy()
            nan_low[-5:] = np.nan
            up = bars.close[0] + np.arange(len(bars), dtype=np.float64)  # one way: no swing high
            variants = [
                bars_with(bars, high=nan_high), bars_with(bars, low=nan_low),
                bars_with(bars, high=bars.close.copy(), low=bars.close.copy()),  # flat at each close
                bars_with(bars, high=np.full(len(bars), 5.0), low=np.full(len(bars), 5.0)),  # flat everywhere
                bars_with(bars, high=up + 0.5, low=up - 0.5, close=up),
                bars.tail(60), bars.tail(49), bars.tail(5), bars.tail(0),
            ]
            for v in variants:
                for a in (atr, 0.0, math.nan):
                    _check(det, v, a, now)
