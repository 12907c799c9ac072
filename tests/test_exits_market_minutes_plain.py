"""`market_minutes` on plain floats gives, to the bit, what its numpy version gave (kept here as the reference):
on real bars with weekend gaps and daily breaks, entries inside, at the start of and before the window, quotes
and `now` before, at and far past the last bar, and on odd inputs (no bars, one bar, NaN or infinite times,
a timeframe of 0, bars not on the timeframe's grid)."""
from __future__ import annotations

import math

import lifecycle_helpers as k
import numpy as np
import pytest

from core.domain.models import ActiveTrade, Direction
from core.exits.rules import CLOSED_GAP_SECONDS, bars_since_entry, market_minutes

TF = 300


def _reference(trade, candles, tick_time, now, timeframe_seconds, bars=None) -> float:
    """The numpy version `market_minutes` had before."""
    elapsed = max(now - trade.entry_time, 0.0)
    tf = timeframe_seconds
    if tf <= 0 or len(candles) == 0:
        return elapsed / 60.0
    if bars is None:
        bars = bars_since_entry(trade, candles, tf)
    times = bars["time"].astype(float)
    covers_entry = len(bars) < len(candles) or (len(times) and times[0] <= trade.entry_time)
    start = trade.entry_time if covers_entry or not len(times) else float(times[0])
    if len(times):
        gaps = np.concatenate(([times[0] - start], times[1:] - (times[:-1] + tf))).tolist()
        last = float(times[-1]) + tf
    else:
        gaps, last = [], trade.entry_time
    if tick_time > last:
        gaps.append(tick_time - last)
        last = tick_time
    gaps.append(now - last)
    closed = sum(g for g in gaps if g >= CLOSED_GAP_SECONDS)
    return max(elapsed - closed, 0.0) / 60.0


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


def _trade(entry_time: float) -> ActiveTrade:
    return ActiveTrade(ticket=1, symbol="XAUUSDc", strategy="s", direction=Direction.LONG, entry_price=2000.0,
                       sl=1990.0, tp=2030.0, initial_sl=1990.0, volume=0.01, entry_time=entry_time)


@pytest.fixture(scope="module")
def bars():
    return k.m5(k.config(), "XAUUSDc")


def test_equal_to_the_numpy_version_on_real_bars(bars):
    rng = np.random.default_rng(11)
    times = bars["time"]
    gap_at = np.flatnonzero(np.diff(times) >= CLOSED_GAP_SECONDS)  # weekends and holidays
    starts = list(rng.integers(200, len(bars) - 200, 30)) + [int(i) - j for i in gap_at[:12] for j in (2, 10, 60)]
    n = skipped = 0
    for i in starts:
        for back in (0, 5, 63, 64, 90):
            window = bars[max(i - 64 + back, 0):i + back]
            if not len(window):
                continue
            for offset in (0, 1, 150, 299, -300 * 70):
                trade = _trade(float(times[i]) + offset)
                last = float(window["time"][-1]) + TF
                for tick_time in (last - 600, last, last + 7200.0, last + 3 * 86400.0):
                    for now in (tick_time, tick_time + 60, tick_time + 3 * 3600.0, trade.entry_time + 10 * 86400.0):
                        for tf in (TF, 0, 60, 900):
                            since = bars_since_entry(trade, window, tf) if tf else None
                            got = market_minutes(trade, window, tick_time, now, tf, since)
                            assert _same(got, _reference(trade, window, tick_time, now, tf, since))
                            skipped += got < max(now - trade.entry_time, 0.0) / 60.0  # closed time was found
                            assert _same(market_minutes(trade, window, tick_time, now, tf),
                                         _reference(trade, window, tick_time, now, tf))
                            n += 1
    assert n > 10_000 and skipped > 1000


def test_equal_on_odd_inputs(bars):
    window = bars[1000:1064].copy()
    empty = window[:0]
    one = window[-1:]
    off_grid = window.copy()
    off_grid["time"] += 7  # bars not on the 5-minute grid
    t0 = float(window["time"][10])
    for w in (window, empty, one, off_grid):
        for entry in (t0, t0 + 1, float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1e300):
            trade = _trade(entry)
            for tick_time in (t0, float("nan"), float("inf"), -1.0):
                for now in (t0 + 86400, float("nan"), float("inf"), t0 - 1e6):
                    for tf in (TF, 0, -5, 1):
                        try:
                            want = _reference(trade, w, tick_time, now, tf)
                        except Exception as e:  # noqa: BLE001 - the new one must fail alike
                            with pytest.raises(type(e)):
                                market_minutes(trade, w, tick_time, now, tf)
                            continue
                        assert _same(market_minutes(trade, w, tick_time, now, tf), want)
