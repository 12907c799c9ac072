"""Last-value kernels for the analysis hot path: the same maths as `core.analysis.indicators`, final bars only.

The analysis needs the *current* ATR, RSI and bands, not their whole history, and it runs on every
`/scalp`, monitor cycle and backtest bar. Wilder smoothing seeded with an SMA has a closed form for
its last value (a dot product with cached decay weights), and the bands need only the last `period`
closes, so these cost a few microseconds instead of ~100. `tests/test_range_lastvalues.py` checks
them against `core.analysis.indicators` on real data, so the two cannot drift apart.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

_SUM = np.add.reduce  # what ndarray.mean / .std sum with (pairwise), without their ~3 us of Python wrapping


def mean_of(x: np.ndarray) -> float:
    """`float(x.mean())` of a non-empty float64 array, the same float: numpy's mean is this sum divided
    by the count."""
    return float(_SUM(x)) / len(x)


@lru_cache(maxsize=256)
def _decay(alpha: float, n: int) -> np.ndarray:
    """(1-alpha)^(n-1-k) for k = 0..n-1: the weight of each input on the last smoothed value."""
    w = (1.0 - alpha) ** np.arange(n - 1, -1, -1, dtype=np.float64)
    w.flags.writeable = False
    return w


def wilder_last(x: np.ndarray, period: int, k: int = 1) -> list[float]:
    """The last k values of Wilder's smoothing (alpha = 1/period, seeded with the SMA of the first
    `period` values), oldest first; NaN where the warm-up is not complete. `x` must be NaN-free."""
    n = len(x)
    out = []
    alpha = 1.0 / period
    d = 1.0 - alpha
    seed = mean_of(x[:period]) if n >= period else math.nan
    for j in range(k - 1, -1, -1):
        end = n - j  # exclusive
        if end < period:
            out.append(math.nan)
            continue
        m = end - period  # values after the seed
        if m == 0:
            out.append(seed)
            continue
        w = _decay(alpha, m)
        out.append(d**m * seed + alpha * float(np.dot(w, x[period:end])))
    return out


def atr_last(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> float:
    if len(high) < period:
        return math.nan
    tr = high - low
    if len(tr) > 1:
        prev = close[:-1]
        tr[1:] = np.maximum(tr[1:], np.maximum(np.abs(high[1:] - prev), np.abs(low[1:] - prev)))
    return wilder_last(tr, period)[0]


def rsi_last(close: np.ndarray, period: int, k: int = 2) -> list[float]:
    """Last k Wilder RSI values, oldest first (flat reads 50, only-up reads 100, as `core.analysis.indicators.rsi`)."""
    if len(close) <= period:
        return [math.nan] * k
    delta = np.diff(close)
    gain = np.where(delta > 0, delta, 0.0)
    loss = np.where(delta < 0, -delta, 0.0)
    out = []
    for g, lo in zip(wilder_last(gain, period, k), wilder_last(loss, period, k), strict=True):
        if g != g or lo != lo:
            out.append(math.nan)
        elif lo == 0:
            out.append(50.0 if g == 0 else 100.0)
        else:
            out.append(100.0 - 100.0 / (1.0 + g / lo))
    return out


def bollinger_last(close: np.ndarray, period: int, num_std: float) -> tuple[float, float, float]:
    """(mid, upper, lower) of the last bar: SMA ± num_std·population σ."""
    if len(close) < period:
        return math.nan, math.nan, math.nan
    w = close[-period:]
    # numpy's mean and (population) std, step for step: sum / n, then the mean of squared deviations
    mid = mean_of(w)
    d = w - mid
    sd = math.sqrt(float(_SUM(d * d)) / period)
    return mid, mid + num_std * sd, mid - num_std * sd


def bollinger_width_series(close: np.ndarray, period: int, num_std: float) -> np.ndarray:
    """Band width (upper-lower)/mid for every bar with a full window, via centred cumulative sums
    (centring on the first close keeps BTC-sized prices exact enough for a regime comparison)."""
    n = len(close)
    if n < period:
        return np.empty(0)
    x = close - close[0]
    c1 = np.empty(n + 1)
    c2 = np.empty(n + 1)
    c1[0] = c2[0] = 0.0
    np.cumsum(x, out=c1[1:])
    np.cumsum(x * x, out=c2[1:])
    s1 = c1[period:] - c1[:-period]
    s2 = c2[period:] - c2[:-period]
    mean = s1 / period
    var = np.maximum(s2 / period - mean * mean, 0.0)
    mid = mean + close[0]
    # a masked divide instead of np.errstate + np.where: the same quotients, NaN where mid == 0
    out = np.full(len(mid), np.nan)
    np.divide(2.0 * num_std * np.sqrt(var), mid, out=out, where=mid != 0)
    return out


def vwap_last(high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray) -> tuple[float, float]:
    """(VWAP, σ) of the typical price over all given bars (one session), as `session_vwap`'s last value:
    volume-weighted when any volume traded, equal weights otherwise."""
    if len(close) == 0:
        return math.nan, math.nan
    tp = (high + low + close) / 3.0
    dev = tp - tp[0]
    v = np.where(volume > 0, volume, 0.0)
    sv = float(v.sum())
    if sv > 0:
        m1 = float(np.dot(dev, v)) / sv
        m2 = float(np.dot(dev * dev, v)) / sv
    else:
        m1 = mean_of(dev)
        m2 = float(np.dot(dev, dev)) / len(dev)
    return float(tp[0]) + m1, math.sqrt(max(m2 - m1 * m1, 0.0))


def clip(x: float, lo: float, hi: float) -> float:
    """`np.clip` of one scalar, same answer (NaN passes through; on a tie such as -0.0 vs 0.0 the value
    is kept, as numpy keeps it) without its ~4 us of array wrapping per call."""
    if x != x:
        return x
    m = x if x >= lo else lo
    return m if m <= hi else hi
