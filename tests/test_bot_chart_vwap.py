"""The analysis chart's price axis fits the candles and levels, not a stale VWAP (real BTCUSDc bars)."""
from __future__ import annotations

import numpy as np
from bot_helpers import analysis_from, real_candles

from bot.chart import MAX_BARS, _vwap, analysis_figure

# 2025-05-20 07:15 UTC: the previous session's VWAP (~103,540) sits ~1,000 below the last 120 bars
AT = 1747725300


def test_stale_vwap_does_not_squash_the_candles_and_is_broken_at_the_session_reset():
    candles = real_candles("BTCUSDc")
    candles = candles[candles["time"] < AT][-320:]  # what /scalp fetches for its chart (CHART_BARS + 200)
    bars = candles[-MAX_BARS:]
    vw = _vwap(candles)[-MAX_BARS:]
    assert vw.min() < bars["low"].min() - 500  # the situation this test is about
    fig = analysis_figure(candles, analysis_from(candles, "BTCUSDc"), digits=2)
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    span = bars["high"].max() - bars["low"].min()
    assert lo <= bars["low"].min() and hi >= bars["high"].max()  # every candle is on the chart
    assert lo > vw.min() and (hi - lo) < 1.2 * span  # ...and fills it
    line = next(ln for ln in ax.get_lines() if ln.get_label() == "VWAP")
    ys = np.asarray(line.get_ydata(), dtype=float)
    days = np.floor(bars["time"] / 86400)
    resets = int((days[1:] != days[:-1]).sum())
    assert resets >= 1 and int(np.isnan(ys).sum()) == resets  # a gap, not a vertical stroke, at each reset
    # every VWAP label stays inside the plot, even when the value itself is off the chart
    for t in ax.texts:
        if t.get_text().strip().startswith("VWAP"):
            assert lo <= t.get_position()[1] <= hi
