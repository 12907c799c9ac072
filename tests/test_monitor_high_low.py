"""The excursions' fast high/low agrees with the ufunc reductions it replaced, NaN and infinities included."""
from __future__ import annotations

import math

import numpy as np

from core.data.candles import CANDLE_DTYPE
from core.exits.rules import _high_low


def _bars(highs, lows):
    b = np.zeros(len(highs), dtype=CANDLE_DTYPE)
    b["high"], b["low"] = highs, lows
    return b


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


def test_high_low_is_the_ufunc_reductions():
    rng = np.random.default_rng(7)
    cases = [([2.5], [1.5]), ([1.0, 3.0, 2.0], [0.5, 0.25, 0.75]),
             ([1.0, math.nan, 2.0], [0.5, 0.4, 0.3]), ([1.0, 2.0], [math.nan, 0.1]),
             ([math.nan, 1.0], [0.2, 0.3]), ([math.inf, 1.0], [-math.inf, 0.1]), ([math.inf, 1.0], [0.0, 0.1]),
             ([-math.inf, -math.inf], [-math.inf, 1.0]), ([-0.0, 0.0], [0.0, -0.0]), ([0.0, -0.0], [-0.0, 0.0])]
    for n in (1, 2, 6, 22, 64):
        h = rng.normal(2000, 5, n)
        cases.append((h.tolist(), (h - rng.random(n)).tolist()))
    for highs, lows in cases:
        b = _bars(highs, lows)
        for view in (b, b[1:] if len(b) > 1 else b):  # a slice, as bars_since_entry hands out
            want = (float(np.maximum.reduce(view["high"])), float(np.minimum.reduce(view["low"])))
            got = _high_low(view)
            assert _same(got[0], want[0]) and _same(got[1], want[1]), (highs, lows, got, want)
            assert type(got[0]) is float and type(got[1]) is float
