"""A small, deterministic decision function for backtest plumbing tests.

It stands in for `core.analysis.facade` only where a test is about the *engine* (fills, peer agreement,
look-ahead of the replay, reports): it reads bars through the broker exactly like the real analysis
and returns a real `AnalysisResult`. Tests that need the real analysis use `analyse_fn=None`.
"""
from __future__ import annotations

import numpy as np

from core.domain.models import (
    AnalysisResult,
    CriticalGapZones,
    Direction,
    RangeStructure,
    StrategyScore,
    TouchCount,
)
from core.domain.timeframes import Timeframe


def edge_fade(symbol, broker, cfg, clock) -> AnalysisResult:
    now = clock.now()
    c = broker.candles(symbol, Timeframe.M5, 60)
    res = AnalysisResult(symbol=symbol, timeframe="M5", as_of=now)
    if len(c) < 60:
        return res
    hi, lo = float(c["high"][:-1].max()), float(c["low"][:-1].min())
    last = float(c["close"][-1])
    w = hi - lo
    atr = float(np.mean(c["high"][-14:] - c["low"][-14:]))
    if w <= 0 or atr <= 0:
        return res
    res.range = RangeStructure(
        symbol=symbol, timeframe="M5", range_type="dynamic", range_high=hi, range_low=lo, range_mid=(hi + lo) / 2,
        range_width_atr=w / atr, range_width_pct=100 * w / last, atr=atr,
        critical_gaps=CriticalGapZones(upper_zone_start=hi - 0.2 * w, upper_zone_end=hi, lower_zone_start=lo,
                                       lower_zone_end=lo + 0.2 * w),
        touch_count=TouchCount(top=2, bottom=2), validated=True, start_time=float(c["time"][0]), end_time=now,
    )
    if last < lo + 0.1 * w:
        d, sl, tp = Direction.LONG, last - atr, last + 1.5 * atr
    elif last > hi - 0.1 * w:
        d, sl, tp = Direction.SHORT, last + atr, last - 1.5 * atr
    else:
        return res
    res.strategies = [StrategyScore(strategy="bb_fade", direction=d, entry=last, stop_loss=sl, take_profit=tp,
                                    rr=1.5, score=70)]
    res.passed = True
    res.confidence = 70
    return res
