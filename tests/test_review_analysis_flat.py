"""Review: a frozen feed (every bar high == low, zero tick volume) must be explained as what it is.

With ATR 0 the analysis used to say "Only 300 closed M5 candles ...; I need at least 50", a sentence
that contradicts itself, and the activity filter blamed "not enough candles". Hand-made bars: the
real files have no flat stretch long enough.
"""
from __future__ import annotations

import json

import numpy as np
from analysis_helpers import run, ts

from core.data.candles import empty


def _flat(n: int, secs: int, t0: float, price: float = 2000.0) -> np.ndarray:
    a = empty(n)
    a["time"] = t0 + np.arange(n) * secs
    for k in ("open", "high", "low", "close"):
        a[k] = price
    a["tick_volume"] = 0
    a["spread"] = 20
    return a


def _result():
    t0 = ts("2025-06-02T00:00")
    data = {"M5": _flat(600, 300, t0), "M15": _flat(200, 900, t0), "H1": _flat(50, 3600, t0)}
    return run("XAUUSDc", t0 + 600 * 300, data=data)


def test_flat_bars_give_a_no_range_that_does_not_contradict_itself():
    r = _result()
    assert r.range is None and not r.passed and r.strategies == []
    assert r.no_range is not None
    assert r.no_range.reason == "no_movement"
    assert "need at least" not in r.no_range.message
    assert "not moved" in r.no_range.message
    activity = next(f for f in r.filters if f.name == "activity")
    assert not activity.passed and "not enough candles" not in activity.reason
    assert "NaN" not in json.dumps(r.model_dump(), default=str)
