"""Latency of `core.analysis.facade.analyse` (range → filters → scoring) on one symbol, vs a pandas baseline.

Run: .venv/bin/python bench/analysis.py [SYMBOL] [CALLS]

The data is real (XAUUSDc M5 + M15 + H1 broker exports) and in memory; each call analyses the next
M5 bar (as a replay or the live monitor would), so the higher-timeframe memo hits as it does live.
A "cold" run clears those memos (nested ranges, expansion state) before every call. The baseline computes the same indicators the
pandas way (DataFrames per call, rolling/ewm/groupby) on the same windows, no range logic at all.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from core.analysis.facade import (  # noqa: E402
    AnalysisInputs,  # noqa: E402
    analyse,
    candles_from_market_data,
    window_sizes,
)
from core.analysis.range import detector as detector_module  # noqa: E402
from core.analysis.range.bars import Bars  # noqa: E402
from core.config.loading import load_config  # noqa: E402
from core.config.paths import market_data_dir  # noqa: E402
from core.data.catalog import MarketData  # noqa: E402


def pandas_baseline(candles: dict[str, np.ndarray], now: float, sizes: dict[str, int], cfg) -> float:
    """Same indicators, pandas-style: ATR/RSI by ewm, Bollinger by rolling, VWAP by groupby, fractals by rolling."""
    ea = cfg.effective_atr
    n = cfg.range_detection.swing_fractal_bars
    out = 0.0
    for tf, size in sizes.items():
        b = Bars.closed_window(candles[tf], tf, now, size)
        df = pd.DataFrame({"time": pd.to_datetime(b.time, unit="s"), "open": b.open, "high": b.high, "low": b.low,
                           "close": b.close, "volume": b.volume})
        prev = df["close"].shift(1)
        tr = pd.concat([df["high"] - df["low"], (df["high"] - prev).abs(), (df["low"] - prev).abs()], axis=1).max(axis=1)
        df["atr"] = tr.ewm(alpha=1 / ea.atr_period, adjust=False).mean()
        mid = df["close"].rolling(ea.bb_period).mean()
        sd = df["close"].rolling(ea.bb_period).std(ddof=0)
        df["bb_upper"], df["bb_lower"] = mid + ea.bb_std * sd, mid - ea.bb_std * sd
        df["bb_width"] = (df["bb_upper"] - df["bb_lower"]) / mid
        d = df["close"].diff()
        up = d.clip(lower=0).ewm(alpha=1 / ea.rsi_period, adjust=False).mean()
        dn = (-d.clip(upper=0)).ewm(alpha=1 / ea.rsi_period, adjust=False).mean()
        df["rsi"] = 100 - 100 / (1 + up / dn)
        tp = (df["high"] + df["low"] + df["close"]) / 3
        day = df["time"].dt.floor("D")
        df["vwap"] = (tp * df["volume"]).groupby(day).cumsum() / df["volume"].groupby(day).cumsum()
        w = 2 * n + 1
        df["swing_high"] = df["high"].where(df["high"] == df["high"].rolling(w, center=True).max()).shift(n)
        df["swing_low"] = df["low"].where(df["low"] == df["low"].rolling(w, center=True).min()).shift(n)
        out += float(df["atr"].iloc[-1]) + float(df["swing_high"].max() or 0)
    return out


def _pct(xs: list[float]) -> tuple[float, float]:
    a = np.asarray(xs) * 1000.0
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def main() -> None:
    symbol = sys.argv[1] if len(sys.argv) > 1 else "XAUUSDc"
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    app = load_config()
    cfg = app.for_symbol(symbol)
    spec = app.symbols[symbol]
    candles = candles_from_market_data(MarketData(app), symbol, app)
    tf = cfg.range_detection.timeframe
    base = candles[tf]
    secs = int(base["time"][1] - base["time"][0]) if len(base) > 1 else 300
    start = len(base) // 2
    nows = [float(t) + secs for t in base["time"][start:start + calls]]
    inputs = [AnalysisInputs(symbol, candles, now) for now in nows]

    for inp in inputs[:50]:  # warm-up: imports, caches, zoneinfo
        analyse(inp, cfg, spec)

    warm = []
    for inp in inputs:
        t0 = time.perf_counter()
        analyse(inp, cfg, spec)
        warm.append(time.perf_counter() - t0)
    cold = []
    for inp in inputs:
        detector_module._NESTED.clear()
        detector_module._EXPANSION.clear()
        t0 = time.perf_counter()
        analyse(inp, cfg, spec)
        cold.append(time.perf_counter() - t0)
    sizes = window_sizes(cfg)
    base_t = []
    for now in nows:
        t0 = time.perf_counter()
        pandas_baseline(candles, now, sizes, cfg)
        base_t.append(time.perf_counter() - t0)

    w50, w99 = _pct(warm)
    c50, c99 = _pct(cold)
    b50, b99 = _pct(base_t)
    bars = ", ".join(f"{k} {v}" for k, v in sizes.items())
    print(f"analysis bench: {symbol}, {calls} consecutive {tf} bars from {time.strftime('%Y-%m-%d', time.gmtime(nows[0]))}, windows: {bars}")
    print(f"  analyse (replay/live, memo warm) p50 {w50:.3f} ms   p99 {w99:.3f} ms")
    print(f"  analyse (cold, no memo)          p50 {c50:.3f} ms   p99 {c99:.3f} ms")
    print(f"  pandas baseline (indicators only, {len(base_t)} calls) p50 {b50:.3f} ms   p99 {b99:.3f} ms")
    print(f"  speed-up at p50: {b50 / w50:.1f}x (warm), {b50 / c50:.1f}x (cold)")
    context_overhead(app, symbol, cfg, spec, inputs)


def context_overhead(app, symbol, cfg, spec, inputs) -> None:
    """What the order-flow and news inputs add to one call, on the live path: the hub's snapshot read
    (recorded prints re-summarised at `now`, the costliest source: exchange/tick reads are a dict lookup)
    plus the calendar, then `analyse` with both, against `analyse` without. Calls are interleaved so
    drift hits both sides alike."""
    import dataclasses

    from core.data.sources.market_context import MarketContext
    from core.data.sources.news import load_calendar_file
    from core.domain.clock import FixedClock

    flow_cfg = app.model_copy(update={"orderflow_feeds": app.orderflow_feeds.model_copy(
        update={"recorded": {symbol: app.orderflow_feeds.recorded.get(
            "BTCUSDc", "${MARKET_DATA}/nautechsystems__nautilus_trader/tests/test_data/binance/btcusdt-trades.parquet")}})})
    clock = FixedClock(inputs[0].now)
    mc = MarketContext(flow_cfg, clock, paper=True)
    trades = mc.recorded._load(symbol)
    cal = load_calendar_file(Path(market_data_dir()) / "cemerttu__ian_bot/forex_calendar_cache.json")
    plain, extra = [], []
    used = {"orderflow": 0, "news_calendar": 0}
    for inp in inputs:
        # the recorded prints (and the calendar) moved to end at this bar's time, so both are fresh inputs
        shift = inp.now - 5 - float(trades["time"][-1])
        mc.recorded._trades[symbol] = trades.copy()
        mc.recorded._trades[symbol]["time"] += shift
        news = type(cal)(tuple(dataclasses.replace(e, time=e.time + (inp.now - cal.first)) for e in cal.events[:40]),
                         inp.now - 60, cal.source)
        clock.set(inp.now)
        t0 = time.perf_counter()
        analyse(inp, cfg, spec)
        plain.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        snap, err = mc.flow(symbol)
        res = analyse(dataclasses.replace(inp, orderflow=snap, orderflow_error=err, news=news), cfg, spec)
        mc.record(res)
        extra.append(time.perf_counter() - t0)
        dq = next(f for f in res.filters if f.name == "data_quality").details
        for k in used:
            used[k] += bool(dq[k]["available"])
    p50, p99 = _pct(plain)
    e50, e99 = _pct(extra)
    print(f"  order flow + news inputs ({len(inputs)} calls, recorded flow {len(trades)} prints, 40 events): "
          f"p50 {e50:.3f} ms vs {p50:.3f} ms without -> +{e50 - p50:.3f} ms p50 (limit 5 ms), "
          f"p99 {e99:.3f} vs {p99:.3f} ms; flow used in {used['orderflow']}/{len(inputs)} calls, "
          f"news checked in {used['news_calendar']}/{len(inputs)}")


if __name__ == "__main__":
    main()
