"""Review: at exactly 00:00 UTC the day that just closed is the previous day.

`_previous_day_edges` took "today" from `as_of - 1 s`, so an analysis at the 00:00 bar close (the
23:55 M5 bar has just closed, the whole day is known) still called that day "today" and used the day
before it, one bar a day, every day. Real XAUUSD/EURUSD H1 data, checked against the H1 bars of the
day directly.
"""
from __future__ import annotations

import numpy as np
import pytest
from analysis_helpers import app, candles, ts

from core.analysis.range.bars import Bars
from core.analysis.range.detector import RangeBoundaryDetector


def _day_extremes(h1: np.ndarray, day: str) -> tuple[float, float]:
    t0 = ts(f"{day}T00:00")
    m = (h1["time"] >= t0) & (h1["time"] < t0 + 86400)
    assert m.sum() >= 20
    return float(h1["high"][m].max()), float(h1["low"][m].min())


@pytest.mark.parametrize("symbol,now,prev", [
    ("XAUUSDc", "2025-06-11T00:00", "2025-06-10"),
    ("XAUUSDc", "2025-06-11T00:05", "2025-06-10"),
    ("XAUUSDc", "2025-06-10T23:55", "2025-06-09"),
    ("EURUSDc", "2026-06-04T00:00", "2026-06-03"),
])
def test_previous_day_at_and_around_midnight(symbol, now, prev):
    h1 = candles(symbol)["H1"]
    t = ts(now)
    bars = Bars.closed_window(h1, "H1", t, 120)
    det = RangeBoundaryDetector(app().for_symbol(symbol), symbol)
    r = det.detect_range(bars, "previous_day", atr=1.0, as_of=t, apply_width_limits=False)
    assert (r.range_high, r.range_low) == _day_extremes(h1, prev)
    assert r.start_time == ts(f"{prev}T00:00")
