"""The hot-path last-value kernels agree with `core.analysis.indicators` on real data (they must never drift)."""
from __future__ import annotations

import numpy as np
import pytest
from analysis_helpers import SYMBOLS, candles

from core.analysis.indicators import atr, bollinger, rsi, session_vwap
from core.analysis.range.lastvalues import (
    atr_last,
    bollinger_last,
    bollinger_width_series,
    clip,
    mean_of,
    rsi_last,
    vwap_last,
)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_last_values_match_the_indicator_library(symbol):
    m5 = candles(symbol)["M5"]
    rng = np.random.default_rng(3)
    for start in rng.integers(0, len(m5) - 400, 25):
        w = m5[start:start + 300]
        t, h, lo, c, v = (w[k].astype(np.float64) for k in ("time", "high", "low", "close", "tick_volume"))
        assert atr_last(h, lo, c, 14) == pytest.approx(atr(h, lo, c, 14)[-1], rel=1e-9)
        assert rsi_last(c, 14, 2) == pytest.approx(list(rsi(c, 14)[-2:]), rel=1e-9)
        mid, up, dn, width = bollinger(c, 20, 2.0)
        assert bollinger_last(c, 20, 2.0) == pytest.approx((mid[-1], up[-1], dn[-1]), rel=1e-12)
        np.testing.assert_allclose(bollinger_width_series(c[-116:], 20, 2.0), width[-97:], rtol=1e-6)
        day = np.floor(t[-1] / 86400) * 86400
        k = int(np.searchsorted(t, day))
        vw, sig = session_vwap(t, h, lo, c, v, 0.0)
        got = vwap_last(h[k:], lo[k:], c[k:], v[k:])
        assert got[0] == pytest.approx(vw[-1], rel=1e-12) and got[1] == pytest.approx(sig[-1], rel=1e-6, abs=1e-9)


def test_warm_up_is_nan():
    c = np.linspace(1, 2, 10)
    assert np.isnan(atr_last(c, c - 0.1, c, 14))
    assert all(np.isnan(rsi_last(c, 14, 2)))
    assert all(np.isnan(x) for x in bollinger_last(c, 20, 2))


def test_scalar_clip_is_np_clip_bit_for_bit():
    """The confluence and confidence scores go through `clip`: it must give np.clip's float, sign of zero included."""
    values = [-1.0, -0.0, 0.0, 1e-300, 0.5, 1.0, 1.5, 100.0, 101.0, float("inf"), float("-inf"), float("nan")]
    for x in values:
        for lo, hi in ((0.0, 1.0), (0, 100), (0.0, 100.0), (-0.0, 0.0), (-0.0, 1.0)):
            want, got = float(np.clip(x, lo, hi)), float(clip(x, lo, hi))
            assert (want != want and got != got) or (want == got and np.signbit(want) == np.signbit(got)), (x, lo, hi)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_mean_and_bands_are_numpys_own_floats(symbol):
    """`mean_of` and `bollinger_last` skip numpy's wrappers, not its arithmetic: the same floats, exactly."""
    c = candles(symbol)["M5"]["close"].astype(np.float64)
    rng = np.random.default_rng(5)
    for start in rng.integers(0, len(c) - 400, 25):
        for n in (1, 3, 7, 8, 9, 14, 20, 96, 300):
            w = c[start:start + n]
            assert mean_of(w) == float(w.mean())
            assert mean_of(w - w[0]) == float((w - w[0]).mean())
        w = c[start:start + 20]
        mid, sd = float(w.mean()), float(w.std())
        assert bollinger_last(c[:start + 20], 20, 2.0) == (mid, mid + 2.0 * sd, mid - 2.0 * sd)


def _width_series_reference(close, period, num_std):
    """The concatenate + errstate/np.where formulation `bollinger_width_series` had: it must stay bit-identical."""
    x = close - close[0]
    c1 = np.concatenate(([0.0], np.cumsum(x)))
    c2 = np.concatenate(([0.0], np.cumsum(x * x)))
    mean = (c1[period:] - c1[:-period]) / period
    var = np.maximum((c2[period:] - c2[:-period]) / period - mean * mean, 0.0)
    mid = mean + close[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mid != 0, 2.0 * num_std * np.sqrt(var) / mid, np.nan)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_width_series_is_bit_identical_to_its_reference(symbol):
    c = candles(symbol)["M5"]["close"].astype(np.float64)
    rng = np.random.default_rng(11)
    for start in rng.integers(0, len(c) - 400, 25):
        w = c[start:start + 115]
        np.testing.assert_array_equal(bollinger_width_series(w, 20, 2.0), _width_series_reference(w, 20, 2.0))
    zero = np.array([1.0, -1.0] * 20)  # mid == 0 on every window: NaN, as before
    np.testing.assert_array_equal(bollinger_width_series(zero, 2, 2.0), _width_series_reference(zero, 2, 2.0))
