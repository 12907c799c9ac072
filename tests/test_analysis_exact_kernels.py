"""The analysis kernels rewritten for speed give the very floats (and counts) of the forms they replaced.

Each reference below is the previous implementation, verbatim: the rewrites must agree with it bit for bit
on real bars of every symbol and on the edge cases (flat steps, NaN, inf, zero mid) where the two forms
could part. A backtest replays the live analysis, so any drift here would change trades.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from analysis_helpers import SYMBOLS, candles
from test_range_lastvalues import _width_series_reference

from core.analysis.range.detector import _pivots, count_touches
from core.analysis.range.lastvalues import (
    _atr_last_reference,
    atr_last,
    bollinger_width_series,
    mean_of,
    rsi_last,
    width_regime,
    wilder_last,
)


def _same(a: float, b: float) -> bool:
    return (a != a and b != b) or (a == b and math.copysign(1.0, a) == math.copysign(1.0, b))


def _windows(symbol: str, tf: str, size: int, count: int, seed: int):
    arr = candles(symbol)[tf]
    rng = np.random.default_rng(seed)
    for start in rng.integers(0, len(arr) - size, count):
        w = arr[start:start + size]
        yield tuple(w[k].astype(np.float64) for k in ("high", "low", "close"))


def _count_touches_reference(high, low, top, bottom, tol):
    near_top = high >= top - tol
    near_bot = low <= bottom + tol
    top_n = int(near_top[0]) + int(np.count_nonzero(near_top[1:] & ~near_top[:-1])) if len(high) else 0
    bot_n = int(near_bot[0]) + int(np.count_nonzero(near_bot[1:] & ~near_bot[:-1])) if len(low) else 0
    return top_n, bot_n


def _pivots_reference(x, n, higher):
    length = len(x)
    if length < 2 * n + 1:
        return x[:0]
    centre = x[n:length - n]
    ok = None
    for k in range(1, n + 1):
        left, right = x[n - k:length - n - k], x[n + k:length - n + k]
        m = (centre > left) & (centre > right) if higher else (centre < left) & (centre < right)
        ok = m if ok is None else ok & m
    return centre[ok]


def _rsi_last_reference(close, period, k=2):
    if len(close) <= period:
        return [math.nan] * k
    delta = np.diff(close)
    gain = np.where(delta > 0, delta, 0.0)
    loss = np.where(delta < 0, -delta, 0.0)
    out = []
    for g, lo in zip(wilder_last(gain, period, k), wilder_last(loss, period, k), strict=True):
        if g != g or lo != lo:
            out.append(math.nan)
        elif lo == 0:
            out.append(50.0 if g == 0 else 100.0)
        else:
            out.append(100.0 - 100.0 / (1.0 + g / lo))
    return out


# the concatenate + errstate/np.where formulation the width series had (one copy, kept with its own test)
_width_reference = _width_series_reference


def _regime_reference(close, period, num_std):
    """What `expansion_state` read from the width series before `width_regime`."""
    width = _width_reference(close, period, num_std) if len(close) >= period else np.empty(0)
    ref = width[np.isfinite(width)]
    last = float(width[-1]) if len(width) else math.nan
    avg = mean_of(ref) if len(ref) >= 2 else math.nan
    return last, avg, len(ref)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_touches_and_pivots_match_their_references_on_real_bars(symbol):
    for tf in ("M5", "M15", "H1"):
        for h, lo, _c in _windows(symbol, tf, 156, 40, 21):
            for n in (1, 2, 3):
                for higher, x in ((True, h), (False, lo)):
                    np.testing.assert_array_equal(_pivots(x, n, higher), _pivots_reference(x, n, higher))
            mid = (h.max() + lo.min()) / 2
            for top, bottom, tol in ((h.max(), lo.min(), 0.0), (float(np.median(h)), float(np.median(lo)), 1e-3 * mid),
                                     (mid, mid, 0.0)):
                assert count_touches(h, lo, top, bottom, tol) == _count_touches_reference(h, lo, top, bottom, tol)
    empty = np.empty(0)
    assert count_touches(empty, empty, 1.0, 0.0, 0.1) == _count_touches_reference(empty, empty, 1.0, 0.0, 0.1)


def test_pivots_with_nan_and_inf_neighbours_match_the_reference():
    rng = np.random.default_rng(4)
    for _ in range(300):
        x = rng.normal(size=40)
        x[rng.integers(0, 40, 4)] = rng.choice([np.nan, np.inf, -np.inf, 0.0], 4)
        for n in (1, 2, 3):
            for higher in (True, False):
                np.testing.assert_array_equal(_pivots(x, n, higher), _pivots_reference(x, n, higher))


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_atr_and_rsi_are_the_reference_floats_on_real_bars(symbol):
    for tf in ("M5", "M15", "H1"):
        for h, lo, c in _windows(symbol, tf, 300 if tf == "M5" else 156, 40, 22):
            assert _same(atr_last(h, lo, c, 14), _atr_last_reference(h, lo, c, 14))
            assert all(_same(a, b) for a, b in zip(rsi_last(c, 14, 2), _rsi_last_reference(c, 14, 2), strict=True))


def test_atr_and_rsi_edge_cases_match_the_reference():
    """Flat steps (zero gains and losses), NaN and infinite prices: where np.fmax and max(h,pc)-min(l,pc)
    could differ from the forms they replaced (a zero's sign, inf - inf), the answer must still be the same."""
    rng = np.random.default_rng(9)
    flat = np.full(40, 2.0)
    cases = [(flat, flat, flat), (flat + 0.1, flat - 0.1, flat)]
    for _ in range(400):
        c = 100 + rng.normal(size=40).cumsum()
        c[rng.integers(0, 40, 8)] = c[0]  # repeated closes: zero steps
        h, lo = c + rng.uniform(0, 1, 40), c - rng.uniform(0, 1, 40)
        if rng.random() < 0.3:
            i = rng.integers(0, 40)
            pick = rng.choice([np.nan, np.inf, -np.inf])
            (h, lo, c)[rng.integers(0, 3)][i] = pick
        cases.append((h, lo, c))
    for h, lo, c in cases:
        assert _same(atr_last(h, lo, c, 14), _atr_last_reference(h.copy(), lo, c, 14))
        got, want = rsi_last(c, 14, 2), _rsi_last_reference(c, 14, 2)
        assert all(_same(a, b) for a, b in zip(got, want, strict=True)), (got, want)
    for i in (0, 1, 7, 39):  # an inverted bar (high below low): max(h,pc)-min(l,pc) is no true range there
        h, lo, c = cases[i % 2 + 2]
        h, lo = h.copy(), lo.copy()
        h[i], lo[i] = lo[i] - 0.5, h[i]
        assert _same(atr_last(h, lo, c, 14), _atr_last_reference(h, lo, c, 14))
    h = np.full(20, np.inf)  # inf - inf: the one case the two true-range forms part; the reference decides
    assert _same(atr_last(h, h - 1, h, 14), _atr_last_reference(h, h - 1, h, 14))


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_width_regime_is_what_expansion_state_read(symbol):
    for tf in ("M5", "M15", "H1"):
        for _h, _lo, c in _windows(symbol, tf, 115, 40, 23):
            np.testing.assert_array_equal(bollinger_width_series(c, 20, 2.0), _width_reference(c, 20, 2.0))
            got, want = width_regime(c, 20, 2.0), _regime_reference(c, 20, 2.0)
            assert _same(got[0], want[0]) and _same(got[1], want[1]) and got[2] == want[2]


def test_width_regime_with_zero_mid_nan_and_short_input():
    zero = np.array([1.0, -1.0] * 20)  # mid == 0 on every window: every width NaN
    nan_in = 100 + np.arange(40.0)
    nan_in[30] = np.nan
    for c, p in ((zero, 2), (nan_in, 20), (np.arange(1.0, 10.0), 20), (np.array([5.0, 5.0, 5.0]), 3)):
        if len(c) >= p:
            np.testing.assert_array_equal(bollinger_width_series(c, p, 2.0), _width_reference(c, p, 2.0))
        got, want = width_regime(c, p, 2.0), _regime_reference(c, p, 2.0)
        assert _same(got[0], want[0]) and _same(got[1], want[1]) and got[2] == want[2]


def _previous_day_reference(det, bars, as_of):
    """`_previous_day_edges` as it was, building every window it looked at."""
    from core.analysis.range.detector import _DAY, _HOUR, _day_start

    today = _day_start(as_of)
    before = bars.between(-np.inf, today)
    if len(before) == 0:
        return "none"
    need = max(2, int(4 * _HOUR // bars.seconds))
    day0 = _day_start(float(before.time[-1]))
    for _ in range(5):
        prev = before.between(day0, day0 + _DAY)
        if len(prev) >= need:
            break
        earlier = before.between(-np.inf, day0)
        if len(earlier) == 0:
            break
        day0 = _day_start(float(earlier.time[-1]))
    if len(prev) < need:
        return len(prev)
    return float(prev.high.max()), float(prev.low.min()), float(day0), bars.since(day0)


def _session_reference(det, bars, as_of):
    from core.analysis.range.detector import _HOUR
    from core.domain.sessions import window_containing_or_before

    name = det.rd.session_range
    win = window_containing_or_before(name, det.cfg.sessions.definitions[name], as_of - 1.0)
    inside = bars.between(win.start, min(win.end, as_of))
    if len(inside) < max(3, int(_HOUR // bars.seconds)):
        return len(inside)
    return float(inside.high.max()), float(inside.low.min()), win.start, bars.since(win.start)


def _same_bars(a, b) -> bool:
    return type(a) is type(b) and vars(a).keys() == vars(b).keys() and all(
        np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y for x, y in zip(vars(a).values(), vars(b).values(), strict=True))


def _as_reference(found):
    from core.domain.models import NoRange

    if isinstance(found, NoRange):
        return found.details.get("have", "none") if found.reason == "too_few_candles" else found.reason
    return found


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_session_and_previous_day_edges_read_the_windows_they_built(symbol):
    """The edges now read positions instead of building each window: same extremes, counts, start, touch bars."""
    from analysis_helpers import app, bar_close

    from core.analysis.pipeline import window_sizes
    from core.analysis.range.bars import Bars
    from core.analysis.range.detector import RangeBoundaryDetector

    tcfg = app().for_symbol(symbol)
    det = RangeBoundaryDetector(tcfg, symbol)
    sizes = window_sizes(tcfg)
    n = len(candles(symbol)["M5"])
    for i in np.linspace(300, n - 1, 120).astype(int):
        now = bar_close(symbol, int(i)) + (0 if i % 3 else 150.0)  # on and between bar closes
        for tf in ("M15", "H1"):
            bars = Bars.closed_window(candles(symbol)[tf], tf, now, sizes[tf])
            for got, want in ((det._previous_day_edges(bars, now), _previous_day_reference(det, bars, now)),
                              (det._session_edges(bars, now), _session_reference(det, bars, now))):
                got = _as_reference(got)
                assert type(got) is type(want)
                if isinstance(want, tuple):
                    # the finders hand back where the touch window starts, not the window
                    assert got[:3] == want[:3] and _same_bars(bars._slice(slice(got[3], None)), want[3])
                else:
                    assert got == want


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_sliced_bars_equal_constructed_ones_and_span_is_between(symbol):
    from core.analysis.range.bars import Bars

    arr = candles(symbol)["M15"]
    bars = Bars.closed_window(arr, "M15", float(arr["time"][500]), 156)
    for n in (0, 1, 96, 156, 400):
        k = max(0, min(n, len(bars)))
        s = slice(len(bars) - k, len(bars))
        want = Bars(bars.timeframe, bars.seconds, *(getattr(bars, f)[s] for f in
                                                      ("time", "open", "high", "low", "close", "volume", "spread")))
        got = bars.tail(n)
        assert _same_bars(got, want)
        for f in ("time", "high", "close", "spread"):
            assert np.shares_memory(getattr(got, f), getattr(bars, f)) or k == 0
    t = bars.time
    for t0, t1 in ((t[3], t[40]), (t[40], t[3]), (-np.inf, t[10]), (t[-1] + 1, np.inf), (t[5] + 1.0, t[9])):
        s = bars.span(t0, t1)
        assert _same_bars(bars.between(t0, t1), bars._slice(s))
        assert len(bars.between(t0, t1)) == max(0, s.stop - s.start)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_a_range_built_with_its_nested_ranges_is_the_copy_it_replaced(symbol):
    from analysis_helpers import bar_close, context_at

    from core.analysis.range.detector import RangeCandidate

    n = len(candles(symbol)["M5"])
    for i in np.linspace(400, n - 1, 10).astype(int):
        _ctx, det, views = context_at(symbol, bar_close(symbol, int(i)))
        b = views["M5"]
        from core.analysis.range.lastvalues import atr_last

        c = det.detect_candidate(b, "dynamic", atr=atr_last(b.high, b.low, b.close, 14))
        if not isinstance(c, RangeCandidate):
            continue
        higher = det.nested_ranges({k: (v, atr_last(v.high, v.low, v.close, 14)) for k, v in views.items() if k != "M5"})
        got, want = c.build(nested=higher), c.build().model_copy(update={"nested_ranges": higher})
        assert got == want and got.model_fields_set == want.model_fields_set
        assert got.model_dump_json() == want.model_dump_json()


def test_remembered_timeframes_are_the_parsed_members():
    from core.analysis.facade import _timeframe
    from core.domain.timeframes import Timeframe

    for name in ("M1", "M5", "M15", "M30", "H1", "H4", "D1", "m5", "5m", "h1"):
        assert _timeframe(name) is Timeframe.parse(name)
        assert _timeframe(name) is Timeframe.parse(name)  # the remembered one, a second time


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_round_setup_is_dataclasses_replace(symbol):
    """Entry and stop rounding builds the Setup field by field: the same Setup `replace` made, subclasses
    (which may carry more fields) still through `replace`."""
    from dataclasses import dataclass, replace

    from analysis_helpers import app

    from core.analysis.scoring.scorer import RangeScalpingScorer
    from core.analysis.scoring.strategies import Setup
    from core.domain.models import Direction

    class _Ctx:
        spec = app().symbols[symbol]

    @dataclass(frozen=True)
    class Tagged(Setup):
        tag: str = "x"

    rng = np.random.default_rng(12)
    d = _Ctx.spec.digits
    for price in rng.uniform(0.5, 80000, 200):
        for direction in (Direction.LONG, Direction.SHORT):
            s = Setup("bb_fade", direction, float(price), float(price * 0.999), float(price * 1.002), 0.5, "n")
            got = RangeScalpingScorer.round_setup(_Ctx, s)
            f = 10.0**d
            sl = (np.floor(s.stop_loss * f + 1e-6) if direction is Direction.LONG else np.ceil(s.stop_loss * f - 1e-6)) / f
            assert got == replace(s, entry=round(s.entry, d), stop_loss=round(float(sl), d)) and type(got) is Setup
            t = Tagged(*vars(s).values(), tag="keep")
            assert RangeScalpingScorer.round_setup(_Ctx, t).tag == "keep"


def test_width_limits_say_the_same_with_the_early_return():
    from analysis_helpers import app

    from core.analysis.range.detector import RangeBoundaryDetector

    det = RangeBoundaryDetector(app().for_symbol("XAUUSDc"), "XAUUSDc")
    lim = det.cfg.range_width
    for pct in (lim.min_pct / 2, lim.min_pct, (lim.min_pct + lim.max_pct) / 2, lim.max_pct, lim.max_pct * 2, float("nan")):
        got = det._width_failure("dynamic", 2.0, 1.0, pct)
        if lim.min_pct <= pct <= lim.max_pct or pct != pct:
            assert got is None
        else:
            assert got.reason == ("too_narrow" if pct < lim.min_pct else "too_wide")
            assert got.details == {"range_type": "dynamic", "high": 2.0, "low": 1.0, "width_pct": round(pct, 4)}
