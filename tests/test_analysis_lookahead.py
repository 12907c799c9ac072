"""No look-ahead: analysing `data[:t+1]` gives exactly what `moneybot analyse --at t` gives on the full file.

Path A is what a live bot sees at bar t: every series cut at t *by open time*, so higher timeframes
still include their forming bar (the H1 bar that opened at 10:00 when t is 10:35), and BTC's M15/H1
are resampled from the cut M5 series. Path B is the CLI's `--at` path on the whole history. Both
must give the same result to the last digit, for 200+ random bars per real series.
"""
from __future__ import annotations

import numpy as np
import pytest
from analysis_helpers import app, candles, market

from bot.cli_analyse import run_analysis
from core.analysis.facade import analyse, inputs_from_candles
from core.data.resample import resample


def _comparable(result) -> dict:
    d = result.to_dict()
    d.pop("timings_ms")
    return d


@pytest.mark.parametrize("symbol", ["XAUUSDc", "EURUSDc", "BTCUSDc"])
def test_truncated_history_equals_at_on_full_file(symbol):
    cfg = app()
    full = candles(symbol)
    m5 = full["M5"]
    native = set(cfg.symbols[symbol].data)
    rng = np.random.default_rng(20260125 + len(symbol))
    idx = rng.choice(np.arange(400, len(m5)), size=210, replace=False)
    tcfg, spec = cfg.for_symbol(symbol), cfg.symbols[symbol]
    news = _calendar(cfg, symbol)  # the CLI reads the configured calendar too
    differing = []
    for t in idx:
        t_open = float(m5["time"][t])
        cut = {"M5": m5[: t + 1]}
        for tf in ("M15", "H1"):
            if tf in native:  # a real broker export: cut by open time, forming bar included
                arr = full[tf]
                cut[tf] = arr[: int(np.searchsorted(arr["time"], t_open, side="right"))]
            else:  # resampled live from what exists at t (the last bucket is still forming)
                cut[tf] = resample(cut["M5"], tf, source_seconds=300)
        a = analyse(inputs_from_candles(symbol, cut, cfg, news=news), tcfg, spec, cfg.short_version)
        b = run_analysis(cfg, symbol, at=t_open, market=market())
        if _comparable(a) != _comparable(b):
            differing.append(int(t))
    assert not differing, f"{len(differing)} bars differ, first at index {differing[:5]}"


def _calendar(cfg, symbol):
    from core.config.paths import resolve_path
    from core.data.sources.news import NewsCalendarSource
    from core.domain.clock import SystemClock

    n = cfg.for_symbol(symbol).news
    return NewsCalendarSource(resolve_path(n.calendar_path), n.cache_seconds, SystemClock()).get()


def test_future_bars_cannot_change_the_result():
    """Direct form of the same property: appending wildly different future bars changes nothing."""
    cfg = app()
    sym = "XAUUSDc"
    full = candles(sym)
    t = 30000
    now = float(full["M5"]["time"][t]) + 300
    base = analyse(inputs_from_candles(sym, {k: v for k, v in full.items()}, cfg, at=now - 300),
                   cfg.for_symbol(sym), cfg.symbols[sym])
    poisoned = {}
    for tf, arr in full.items():
        a = arr.copy()
        future = a["time"] >= now
        a["high"][future] *= 1.5
        a["close"][future] *= 1.4
        poisoned[tf] = a
    other = analyse(inputs_from_candles(sym, poisoned, cfg, at=now - 300), cfg.for_symbol(sym), cfg.symbols[sym])
    assert _comparable(base) == _comparable(other)
