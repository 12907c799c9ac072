"""Review: RSI thresholds the config accepts must not crash the analysis.

The validator accepts any 0 <= rsi_oversold < rsi_overbought <= 100, but the confluence rule divided
by (rsi_overbought - 50) and (50 - rsi_oversold), and the RSI bounce by (100 - rsi_overbought) and
rsi_oversold: overbought 50 or oversold 50 raised ZeroDivisionError on real XAUUSD bars.
"""
from __future__ import annotations

import math

import pytest
from analysis_helpers import app_with, bar_close, candles, run


@pytest.mark.parametrize("overbought,oversold", [(50, 40), (60, 50), (100, 0)])
def test_edge_rsi_thresholds_analyse_without_error(overbought, oversold):
    cfg = app_with({"entry_filters": {"rsi_overbought": overbought, "rsi_oversold": oversold}})
    n = len(candles("XAUUSDc")["M5"])
    ranged = 0
    for i in range(300, n, n // 120):
        r = run("XAUUSDc", bar_close("XAUUSDc", i), cfg=cfg)
        assert 0.0 <= r.confluence_score <= 100.0 and math.isfinite(r.confluence_score)
        assert all(0.0 <= s.score <= 100.0 for s in r.strategies)
        ranged += r.range is not None
    assert ranged > 10
