"""Time every indicator and the resampler on >= 100k real M1 bars.

Series (each processed on its own; different instruments are never glued into one series):
  nautilus BTC-PERP 1m (45,031) + hadiforoughi EURUSD M1 (49,993) + RayMacBart EURUSD M1 (2 x 9,999)
  = 115,022 real M1 bars. Each figure is the sum over the four files of the best of REPEATS runs.

Run: .venv/bin/python bench/indicators.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.analysis import indicators as ind  # noqa: E402
from core.config.paths import market_data_dir  # noqa: E402
from core.data.loaders import clear_cache, load_candles  # noqa: E402
from core.data.resample import resample  # noqa: E402

FILES = [
    "nautechsystems__nautilus_trader/tests/test_data/btc-perp-20211231-20220201_1m.csv",
    "hadiforoughi__EURUSD_dataset/EURUSD_M1.csv",
    "RayMacBart__Hedgehogger/data/EURUSD_M1_0-10k.csv",
    "RayMacBart__Hedgehogger/data/EURUSD_M1_90-100k.csv",
]
REPEATS = 7


def best(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    market = market_data_dir()
    import logging

    logging.disable(logging.WARNING)  # the RayMacBart repair notice is not a benchmark figure

    load_s = 0.0
    series = []
    for rel in FILES:
        path = market / rel

        def load(path=path):
            clear_cache()
            return load_candles(path)

        load_s += best(load, 3)
        series.append(load_candles(path))
    total = sum(len(a) for a in series)
    print(f"bars: {total:,} real M1 bars in {len(series)} series ({', '.join(f'{len(a):,}' for a in series)})")
    assert total >= 100_000

    cols = []
    for a in series:
        cols.append(
            (a["time"].astype(np.float64), a["high"].astype(np.float64), a["low"].astype(np.float64),
             a["close"].astype(np.float64), a["tick_volume"].astype(np.float64))
        )

    cases = {
        "atr(14)": lambda t, h, lo, c, v: ind.atr(h, lo, c, 14),
        "bollinger(20, 2)": lambda t, h, lo, c, v: ind.bollinger(c, 20, 2.0),
        "rsi(14)": lambda t, h, lo, c, v: ind.rsi(c, 14),
        "ema(50)": lambda t, h, lo, c, v: ind.ema(c, 50),
        "ema(200)": lambda t, h, lo, c, v: ind.ema(c, 200),
        "session_vwap(+sigma)": lambda t, h, lo, c, v: ind.session_vwap(t, h, lo, c, v, 0.0),
        "swing_highs(2)": lambda t, h, lo, c, v: ind.swing_highs(h, 2),
        "swing_lows(2)": lambda t, h, lo, c, v: ind.swing_lows(lo, 2),
    }
    print(f"{'step':<34}{'total ms':>10}{'ns/bar':>10}")
    print(f"{'load (parse+validate, no cache)':<34}{load_s * 1e3:>10.2f}{load_s / total * 1e9:>10.1f}")
    all_ind = 0.0
    for name, fn in cases.items():
        s = sum(best(lambda c=c, fn=fn: fn(*c)) for c in cols)
        all_ind += s
        print(f"{name:<34}{s * 1e3:>10.2f}{s / total * 1e9:>10.1f}")
    print(f"{'all indicators':<34}{all_ind * 1e3:>10.2f}{all_ind / total * 1e9:>10.1f}")
    for tf in ("M5", "M15", "H1", "D1"):
        s = sum(best(lambda a=a, tf=tf: resample(a, tf)) for a in series)
        print(f"{'resample M1->' + tf:<34}{s * 1e3:>10.2f}{s / total * 1e9:>10.1f}")
    s = sum(best(lambda a=a: resample(a, "H1", drop_incomplete=True)) for a in series)
    print(f"{'resample M1->H1 complete':<34}{s * 1e3:>10.2f}{s / total * 1e9:>10.1f}")
    print(f"(best of {REPEATS} runs per series, summed over series; numpy {np.__version__})")


if __name__ == "__main__":
    main()
