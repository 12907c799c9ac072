"""No value at bar t may depend on bars after t: truncate or scramble the future, demand identical bits."""
from __future__ import annotations

import numpy as np
import pytest

from core.analysis import indicators as ind
from core.config.paths import market_data_dir
from core.data.loaders import load_candles

MARKET = market_data_dir()
FILES = {
    "btc_1m": "nautechsystems__nautilus_trader/tests/test_data/btc-perp-20211231-20220201_1m.csv",
    "eurusd_1m": "hadiforoughi__EURUSD_dataset/EURUSD_M1.csv",
    "xauusd_m5": "budimanlai__forex-tick/data/XAUUSD_M5.csv",
}


def _indicators(a: np.ndarray) -> dict[str, np.ndarray]:
    t = a["time"].astype(float)
    h, lo, c = a["high"].astype(float), a["low"].astype(float), a["close"].astype(float)
    v = a["tick_volume"].astype(float)
    mid, up, low_band, width = ind.bollinger(c, 20, 2.0)
    vwap, sigma = ind.session_vwap(t, h, lo, c, v, 7.0)
    return {
        "atr": ind.atr(h, lo, c, 14),
        "atr_long": ind.atr(h, lo, c, 200),
        "rsi": ind.rsi(c, 14),
        "ema": ind.ema(c, 50),
        "ema_chained": ind.ema(ind.rsi(c, 14), 9),
        "wilder": ind.wilder(c, 500),
        "sma": ind.sma(c, 30),
        "bb_mid": mid, "bb_upper": up, "bb_lower": low_band, "bb_width": width,
        "vwap": vwap, "vwap_sigma": sigma,
        "swing_high": ind.swing_highs(h, 2), "swing_low": ind.swing_lows(lo, 2),
        "swing_high_5": ind.swing_highs(h, 5), "swing_low_5": ind.swing_lows(lo, 5),
        "true_range": ind.true_range(h, lo, c),
    }


@pytest.fixture(scope="module", params=sorted(FILES))
def series(request):
    a = load_candles(MARKET / FILES[request.param])[:20_000]
    return a, _indicators(a)


def test_truncating_the_future_changes_nothing(series):
    a, full = series
    rng = np.random.default_rng(7)
    cuts = sorted({1, 2, 5, 13, 14, 15, 21, 200, 501, 3000, len(a) - 1, *rng.integers(30, len(a), 6).tolist()})
    for m in cuts:
        part = _indicators(a[:m])
        for name, values in part.items():
            np.testing.assert_array_equal(values, full[name][:m], err_msg=f"{name} at cut {m}")


def test_scrambling_the_future_changes_nothing(series):
    a, full = series
    rng = np.random.default_rng(11)
    for m in (50, 777, len(a) // 2):
        b = a.copy()
        k = len(b) - m
        scale = float(np.median(a["close"]))
        mid = scale * (1 + rng.normal(0, 0.05, k))
        b["high"][m:] = mid + scale * 0.01
        b["low"][m:] = mid - scale * 0.01
        b["open"][m:] = mid
        b["close"][m:] = mid
        b["tick_volume"][m:] = rng.integers(0, 10_000, k).astype(np.uint64)
        scrambled = _indicators(b)
        for name, values in scrambled.items():
            np.testing.assert_array_equal(values[:m], full[name][:m], err_msg=f"{name} before {m}")
            if name not in ("swing_high", "swing_low", "swing_high_5", "swing_low_5"):
                # and the future really was different, so the test can fail
                assert not np.array_equal(values[m + 600 :], full[name][m + 600 :], equal_nan=True), name
