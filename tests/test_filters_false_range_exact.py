"""`detect_false_range` reads its lookback's columns and the last hour's closes without building `tail` windows.

The reference is the check as it was (two `tail` windows, numpy masks and a count for the last hour); the
two must give equal results on real contexts of every symbol and on bars where the forms could part: NaN
closes, closes equal to opens, no volume, fewer bars than the lookback or the hour, a NaN ATR.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from analysis_helpers import SYMBOLS, bar_close, candles, context_at

from core.analysis.filters.risk_filters import RangeScalpingRiskFilters, _centred
from core.analysis.range.bars import Bars
from core.analysis.range.lastvalues import mean_of
from core.domain.models import FilterResult

_SUM = np.add.reduce


def _reference(ctx) -> FilterResult:
    fr = ctx.cfg.false_range
    r = ctx.rng
    atr = ctx.ind.atr
    lb = ctx.bars.tail(ctx.cfg.range_detection.lookback_bars)
    flags: list[str] = []
    details: dict = {}
    n = len(lb)
    if n >= 3 and atr > 0:
        x, xx = _centred(n)
        slope = float(np.dot(x, lb.close - mean_of(lb.close)) / xx) / atr
        details["trend_slope_atr_per_bar"] = round(slope, 4)
        if abs(slope) > fr.max_trend_slope_atr:
            way = "up" if slope > 0 else "down"
            hours = n * lb.seconds / 3600
            flags.append(
                f"Price has been drifting {way} by {abs(slope):.2f} ATR per candle over {hours:.0f} hours: "
                "that is a trend inside the box, not a range."
            )
    up = float(_SUM(lb.volume[lb.close > lb.open]))
    down = float(_SUM(lb.volume[lb.close < lb.open]))
    if up + down > 0:
        imb = (up - down) / (up + down)
        details["volume_imbalance"] = round(imb, 4)
        if abs(imb) > fr.max_volume_imbalance:
            side = "rising" if imb > 0 else "falling"
            flags.append(f"{abs(imb) * 100:.0f}% of the volume traded on {side} candles: one side is in control.")
    hour = ctx.bars.tail(max(1, int(3600 // ctx.bars.seconds)))
    buf = ctx.cfg.range_invalidation.outside_buffer_atr * atr
    beyond = int(np.count_nonzero((hour.close > r.range_high + buf) | (hour.close < r.range_low - buf)))
    details["closes_beyond_edges_last_hour"] = beyond
    if beyond >= fr.max_closes_beyond_edges and beyond > 0:
        flags.append(
            f"Price has closed outside the range {beyond} times in the last hour — this looks like a breakout, not a range."
        )
    if flags:
        return FilterResult(name="false_range", passed=False, reason=" ".join(flags), details=details)
    return FilterResult(name="false_range", passed=True, details=details,
                        reason="No trend, volume push or breakout closes inside the range.")


def _replace(bars: Bars, **cols) -> Bars:
    f = {k: getattr(bars, k) for k in ("time", "open", "high", "low", "close", "volume", "spread")}
    f.update(cols)
    return Bars(bars.timeframe, bars.seconds, **f)


def _same(ctx) -> None:
    got, want = RangeScalpingRiskFilters().detect_false_range(ctx), _reference(ctx)
    # the JSON, not ==: a NaN slope (NaN closes) is unequal to itself; NaN is written as a constant
    assert got.model_dump_json() == want.model_dump_json()
    assert {k: type(v) for k, v in got.details.items()} == {k: type(v) for k, v in want.details.items()}


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_false_range_on_real_contexts_is_the_tail_window_check(symbol):
    n = len(candles(symbol)["M5"])
    seen = set()
    for i in np.linspace(400, n - 1, 150).astype(int):
        ctx, _det, _views = context_at(symbol, bar_close(symbol, int(i)))
        if ctx.rng is None:
            continue
        _same(ctx)
        seen.add(RangeScalpingRiskFilters().detect_false_range(ctx).passed)
    assert seen == {True, False}  # both verdicts met on real bars


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_false_range_where_the_forms_could_part(symbol):
    n = len(candles(symbol)["M5"])
    done = 0
    for i in np.linspace(600, n - 1, 10).astype(int):
        ctx, _det, _views = context_at(symbol, bar_close(symbol, int(i)))
        if ctx.rng is None:
            continue
        b = ctx.bars
        nan_close = b.close.copy()
        nan_close[-3:] = np.nan
        nan_close[-40] = np.nan
        r = ctx.rng
        outside = b.close.copy()
        outside[-6:] = [r.range_high * 1.01, r.range_low * 0.99, r.range_high, r.range_low, np.inf, -np.inf]
        variants = [
            _replace(b, close=nan_close),
            _replace(b, close=outside),
            _replace(b, open=b.close.copy()),  # no up or down candle
            _replace(b, volume=np.zeros(len(b))),
            b.tail(90), b.tail(12), b.tail(11), b.tail(3), b.tail(2), b.tail(1),
        ]
        for bars in variants:
            _same(dataclasses.replace(ctx, bars=bars))
        _same(dataclasses.replace(ctx, ind=dataclasses.replace(ctx.ind, atr=float("nan"))))
        _same(dataclasses.replace(ctx, ind=dataclasses.replace(ctx.ind, atr=0.0)))
        done += 1
    assert done >= 5
