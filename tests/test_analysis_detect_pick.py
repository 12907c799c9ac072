"""`_detect` skips the candidates a validated swing range around price makes irrelevant: the same pick.

The reference below is `_detect` as it was, measuring every candidate before picking. The two must return
equal ranges (nested ranges included), no-range answers, previous-day levels and higher-timeframe ranges on
real bars of every symbol, and on windows where the shortcut must not apply (price outside the box or NaN,
an unvalidated box) or where a candidate cannot be measured (short, empty or flat windows).
"""
from __future__ import annotations

import numpy as np
import pytest
from analysis_helpers import SYMBOLS, app, bar_close, bars_with, candles, views_at

import core.analysis.pipeline as an
from core.analysis.range.detector import RangeBoundaryDetector, RangeCandidate
from core.analysis.range.lastvalues import atr_last
from core.domain.models import NoRange


def _reference(detector, cfg, views, atrs, tf, as_of):
    """`pipeline._detect` before the shortcut, verbatim but for the session-timeframe memo."""
    bars = views[tf]
    atr = atrs[tf]
    need = max(cfg.range_detection.min_candles, cfg.effective_atr.atr_period)
    if len(bars) < need:
        return None, detector._too_few(bars, need, "range"), None, {}
    if not (atr > 0):
        return None, NoRange(
            reason="no_movement",
            message=f"Price has not moved over the last {cfg.effective_atr.atr_period} {tf} candles "
            "(zero ATR): the feed looks frozen or the market is closed.",
            details={"have": len(bars), "atr": atr, "timeframe": tf},
        ), None, {}
    found = {"dynamic": detector.detect_candidate(bars, "dynamic", atr=atr, as_of=as_of)}
    stf = an._session_tf(cfg, an.window_sizes(cfg))
    if stf in views and atrs.get(stf, 0) > 0:
        found["session"] = detector.detect_candidate(views[stf], "session", atr=atrs[stf], as_of=as_of)
    prev_day = None
    if "H1" in views and atrs.get("H1", 0) > 0:
        pd = detector.detect_candidate(views["H1"], "previous_day", atr=atrs["H1"], as_of=as_of,
                                       apply_width_limits=False)
        if isinstance(pd, RangeCandidate):
            prev_day = (pd.range_high, pd.range_low)
            found["previous_day"] = detector._width_failure(pd.range_type, pd.range_high, pd.range_low,
                                                            pd.range_width_pct) or pd
        else:
            found["previous_day"] = pd
    cands = [r for r in found.values() if isinstance(r, RangeCandidate)]
    if not cands:
        first = found["dynamic"]
        others = {k: v.reason for k, v in found.items() if isinstance(v, NoRange)}
        return None, first.model_copy(update={"details": {**first.details, "by_type": others}}), prev_day, {}
    higher = detector.nested_ranges({k: (v, atrs[k]) for k, v in views.items()
                                     if k != tf and k in cfg.range_detection.nested_timeframes})
    price = float(bars.close[-1])
    inside = [r for r in cands if r.range_low - atr <= price <= r.range_high + atr]
    pool = inside or cands
    best = min(pool, key=lambda r: (not r.validated, an.PREFERENCE.index(r.range_type)))
    return best.build(nested=higher), None, prev_day, higher


def _settled(got, views, atrs, tf) -> bool:
    rng = got[0]
    price = float(views[tf].close[-1])
    return (rng is not None and rng.range_type == "dynamic" and rng.validated
            and rng.range_low - atrs[tf] <= price <= rng.range_high + atrs[tf])


def _check(symbol, views, as_of) -> tuple:
    tcfg = app().for_symbol(symbol)
    period = tcfg.effective_atr.atr_period
    atrs = {k: atr_last(v.high, v.low, v.close, period) for k, v in views.items()}
    tf = tcfg.range_detection.timeframe
    det = RangeBoundaryDetector(tcfg, symbol)
    got = an._detect(det, tcfg, views, atrs, tf, as_of)
    want = _reference(det, tcfg, views, atrs, tf, as_of)
    assert got[0] == want[0] and (got[0] is None or got[0].model_dump_json() == want[0].model_dump_json())
    assert got[1] == want[1] and got[2] == want[2] and got[3] == want[3]
    return got, atrs, tf


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_the_pick_is_the_one_among_every_measured_candidate(symbol):
    n = len(candles(symbol)["M5"])
    kinds = {"settled": 0, "other": 0}
    for i in np.linspace(400, n - 1, 160).astype(int):
        now = bar_close(symbol, int(i))
        views = views_at(symbol, now)
        got, atrs, tf = _check(symbol, views, views["M5"].last_close_time)
        kinds["settled" if _settled(got, views, atrs, tf) else "other"] += 1
    assert kinds["settled"] >= 10 and kinds["other"] >= 10, kinds


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_the_pick_where_the_shortcut_must_not_apply_or_a_candidate_is_missing(symbol):
    n = len(candles(symbol)["M5"])
    for i in np.linspace(600, n - 1, 12).astype(int):
        now = bar_close(symbol, int(i))
        base = views_at(symbol, now)
        m5 = base["M5"]
        as_of = m5.last_close_time
        far = m5.close.copy()
        far[-1] = m5.close[-1] * 1.5  # price far above any box: no candidate is inside
        nan = m5.close.copy()
        nan[-1] = np.nan  # price unknown: nothing compares inside
        h1 = base["H1"]
        flat_h1 = bars_with(h1, high=h1.close.copy(), low=h1.close.copy(), open=h1.close.copy())
        variants = [
            {**base, "M5": bars_with(m5, close=far)},
            {**base, "M5": bars_with(m5, close=nan)},
            {k: v for k, v in base.items() if k != "H1"},  # no H1: no previous day, no H1 nested range
            {k: v for k, v in base.items() if k != "M15"},  # no session timeframe
            {**base, "H1": h1.tail(3)},  # too short for the previous day and the ATR
            {**base, "H1": h1.tail(0)},
            {**base, "H1": flat_h1},  # zero H1 ATR: the previous day is not asked
            {**base, "M15": base["M15"].tail(10)},
            {**base, "M5": m5.tail(20)},  # too few primary bars
            {**base, "M5": bars_with(m5, high=m5.close.copy(), low=m5.close.copy())},  # flat primary: no ATR
        ]
        for views in variants:
            _check(symbol, views, as_of)


def test_an_unvalidated_swing_range_is_not_taken_for_the_pick():
    """With a touch requirement no box meets, the dynamic range never settles the pick: the reference decides."""
    from analysis_helpers import app_with

    cfg = app_with({"range_detection": {"min_touches_per_side": 20}})
    symbol = SYMBOLS[0]
    tcfg = cfg.for_symbol(symbol)
    n = len(candles(symbol)["M5"])
    for i in np.linspace(600, n - 1, 20).astype(int):
        views = views_at(symbol, bar_close(symbol, int(i)))
        atrs = {k: atr_last(v.high, v.low, v.close, 14) for k, v in views.items()}
        det = RangeBoundaryDetector(tcfg, symbol)
        args = (det, tcfg, views, atrs, "M5", views["M5"].last_close_time)
        got, want = an._detect(*args), _reference(*args)
        assert got == want
        assert got[0] is None or not got[0].validated
