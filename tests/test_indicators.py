"""Indicators against straightforward reference implementations (loops / pandas), on real data."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.analysis import indicators as ind
from core.config.paths import market_data_dir
from core.data.loaders import load_candles

MARKET = market_data_dir()


@pytest.fixture(scope="module")
def btc():
    return load_candles(MARKET / "nautechsystems__nautilus_trader/tests/test_data/btc-perp-20211231-20220201_1m.csv")[:6000]


@pytest.fixture(scope="module")
def eur():
    return load_candles(MARKET / "hadiforoughi__EURUSD_dataset/EURUSD_M1.csv")[:6000]


@pytest.fixture(params=["btc", "eur"])
def bars(request):
    return request.getfixturevalue(request.param)


def _cols(a):
    return a["high"].astype(float), a["low"].astype(float), a["close"].astype(float)


def _ref_wilder_loop(x, period):
    out = [math.nan] * len(x)
    if len(x) < period:
        return np.array(out)
    prev = sum(x[:period]) / period
    out[period - 1] = prev
    for i in range(period, len(x)):
        prev = prev + (x[i] - prev) / period
        out[i] = prev
    return np.array(out)


def _ref_seeded_ewm(x, period, alpha):
    """pandas ewm(adjust=False) seeded with the SMA of the first `period` values."""
    out = np.full(len(x), np.nan)
    s = pd.Series(np.r_[np.mean(x[:period]), x[period:]]).ewm(alpha=alpha, adjust=False).mean()
    out[period - 1 :] = s.to_numpy()
    return out


def test_atr_matches_loop_and_pandas(bars):
    h, lo, c = _cols(bars)
    got = ind.atr(h, lo, c, 14)
    tr = [h[0] - lo[0]] + [max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])) for i in range(1, len(h))]
    np.testing.assert_allclose(got, _ref_wilder_loop(tr, 14), rtol=1e-10, equal_nan=True)
    np.testing.assert_allclose(got, _ref_seeded_ewm(np.array(tr), 14, 1 / 14), rtol=1e-10, equal_nan=True)
    assert np.isnan(got[:13]).all() and np.isfinite(got[13:]).all()


def test_rsi_matches_loop(bars):
    c = bars["close"].astype(float)
    got = ind.rsi(c, 14)
    d = np.diff(c)
    ag = _ref_wilder_loop(list(np.maximum(d, 0)), 14)
    al = _ref_wilder_loop(list(np.maximum(-d, 0)), 14)
    ref = np.full(len(c), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(al == 0, np.where(ag == 0, 50.0, 100.0), 100 - 100 / (1 + ag / al))
    ref[1:] = np.where(np.isnan(ag), np.nan, r)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9, equal_nan=True)
    assert np.isnan(got[:14]).all() and np.isfinite(got[14:]).all()
    assert np.all((got[14:] >= 0) & (got[14:] <= 100))


def test_rsi_edge_cases():
    assert np.isnan(ind.rsi(np.arange(10.0), 14)).all()
    assert ind.rsi(np.full(30, 5.0), 14)[-1] == 50.0
    assert ind.rsi(np.arange(30.0), 14)[-1] == 100.0
    assert ind.rsi(np.arange(30.0)[::-1], 14)[-1] == 0.0


def test_ema_matches_pandas(bars):
    c = bars["close"].astype(float)
    for p in (5, 20, 200):
        np.testing.assert_allclose(ind.ema(c, p), _ref_seeded_ewm(c, p, 2 / (p + 1)), rtol=1e-11, equal_nan=True)


def test_ema_skips_leading_nans_for_chaining(bars):
    h, lo, c = _cols(bars)
    a = ind.atr(h, lo, c, 14)
    chained = ind.ema(a, 10)
    np.testing.assert_allclose(chained[13:], ind.ema(a[13:], 10), rtol=1e-12, equal_nan=True)
    assert np.isnan(chained[: 13 + 9]).all()


def test_bollinger_matches_pandas_rolling(bars):
    c = bars["close"].astype(float)
    mid, up, lo, width = ind.bollinger(c, 20, 2.0)
    s = pd.Series(c)
    rm = s.rolling(20).mean().to_numpy()
    rs = s.rolling(20).std(ddof=0).to_numpy()
    np.testing.assert_allclose(mid, rm, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(up - mid, 2 * rs, rtol=1e-6, atol=1e-9 * np.nanmax(c), equal_nan=True)
    np.testing.assert_allclose(mid - lo, 2 * rs, rtol=1e-6, atol=1e-9 * np.nanmax(c), equal_nan=True)
    np.testing.assert_allclose(width, (up - lo) / mid, rtol=1e-12, equal_nan=True)
    assert np.isnan(mid[:19]).all() and np.isfinite(width[19:]).all()


def test_bollinger_exact_sigma_for_btc_sized_prices():
    x = 100_000.0 + np.array([0.0, 1.0, 2.0, 3.0] * 10)
    _, up, lo, _ = ind.bollinger(x, 4, 1.0)
    np.testing.assert_allclose((up - lo)[3:] / 2, np.sqrt(1.25), rtol=1e-9)


def _ref_vwap(t, h, lo, c, v, start_hour):
    df = pd.DataFrame({"tp": (h + lo + c) / 3, "v": v.astype(float)})
    df["s"] = np.floor((t - start_hour * 3600) / 86400)
    g = df.groupby("s")
    cv = g["v"].cumsum()
    vw = (df["tp"] * df["v"]).groupby(df["s"]).cumsum() / cv
    m2 = (df["tp"] ** 2 * df["v"]).groupby(df["s"]).cumsum() / cv
    return vw.to_numpy(), np.sqrt(np.maximum(m2 - vw**2, 0)).to_numpy()


@pytest.mark.parametrize("start_hour", [0.0, 7.5, 22.0])
def test_session_vwap_matches_groupby(bars, start_hour):
    h, lo, c = _cols(bars)
    t = bars["time"].astype(float)
    v = np.maximum(bars["tick_volume"].astype(float), 1.0)
    vwap, sigma = ind.session_vwap(t, h, lo, c, v, start_hour)
    ref_vwap, ref_sigma = _ref_vwap(t, h, lo, c, v, start_hour)
    np.testing.assert_allclose(vwap, ref_vwap, rtol=1e-12)
    # the reference squares raw prices (cancellation); ours centres first, so compare loosely
    np.testing.assert_allclose(sigma, ref_sigma, rtol=1e-4, atol=1e-6 * np.max(c))
    # resets exactly at the session start
    first = np.flatnonzero(np.diff(np.floor((t - start_hour * 3600) / 86400)) != 0) + 1
    tp = (h + lo + c) / 3
    np.testing.assert_allclose(vwap[first], tp[first], rtol=1e-15)
    assert np.all(sigma[first] == 0)
    upper, lower = ind.vwap_bands(vwap, sigma, 2.0)
    np.testing.assert_allclose(upper - vwap, 2 * sigma)
    np.testing.assert_allclose(vwap - lower, 2 * sigma)


def test_session_vwap_zero_volume():
    t = np.arange(6) * 60.0
    h = np.array([2.0, 4, 6, 8, 10, 12])
    lo = h - 2
    c = h - 1
    v = np.array([0.0, 0, 3, 0, 1, 0])
    vwap, sigma = ind.session_vwap(t, h, lo, c, v)
    tp = (h + lo + c) / 3
    assert np.all(np.isfinite(vwap)) and np.all(np.isfinite(sigma))
    assert vwap[0] == tp[0] and vwap[1] == pytest.approx(tp[:2].mean())  # no volume yet: equal weights
    assert vwap[2] == pytest.approx(tp[2]) and vwap[3] == pytest.approx(tp[2])  # zero-volume bar adds nothing
    assert vwap[4] == pytest.approx((3 * tp[2] + tp[4]) / 4)
    assert sigma[4] == pytest.approx(math.sqrt((3 * (tp[2] - vwap[4]) ** 2 + (tp[4] - vwap[4]) ** 2) / 4))


def _ref_swings(x, n, higher):
    out = np.full(len(x), np.nan)
    for p in range(n, len(x) - n):
        side = list(x[p - n : p]) + list(x[p + 1 : p + n + 1])
        if all((x[p] > s) if higher else (x[p] < s) for s in side):
            out[p + n] = x[p]
    return out


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_swings_match_loop(bars, n):
    h, lo, _ = _cols(bars)
    np.testing.assert_array_equal(ind.swing_highs(h, n), _ref_swings(h, n, True))
    np.testing.assert_array_equal(ind.swing_lows(lo, n), _ref_swings(lo, n, False))
    assert np.isfinite(ind.swing_highs(h, n)).sum() > 10


def test_swings_reported_at_confirming_bar_and_flat_tops_ignored():
    h = np.array([1.0, 2, 5, 3, 2, 1, 4, 4, 1, 0])
    out = ind.swing_highs(h, 2)
    assert np.flatnonzero(np.isfinite(out)).tolist() == [4]  # pivot at bar 2 known at bar 4
    assert out[4] == 5.0  # the equal pair 4,4 is no fractal
    lows = ind.swing_lows(-h, 2)
    assert lows[4] == -5.0
    assert np.isnan(ind.swing_highs(h[:4], 2)).all()
    with pytest.raises(ValueError):
        ind.swing_highs(h, 0)


def test_sma_and_true_range_basics():
    x = np.arange(10.0)
    np.testing.assert_array_equal(ind.sma(x, 3)[2:], np.arange(1.0, 9.0))
    assert np.isnan(ind.sma(x, 3)[:2]).all()
    tr = ind.true_range([3.0, 5.0], [1.0, 4.0], [2.0, 4.5])
    assert tr.tolist() == [2.0, 3.0]  # second bar gaps up: high - prev close
    with pytest.raises(ValueError):
        ind.ema(x, 0)
    assert len(ind.atr(np.array([]), np.array([]), np.array([]))) == 0
