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
_MIN = np.minimum.reduce


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
    # true range max(h-l, |h-pc|, |l-pc|) as max(h, pc) - min(l, pc): on a bar with low <= high the larger
    # of the three is the very subtraction the second form makes (rounding is monotone), so the floats are
    # equal, in 3 ops not 6. An inverted or NaN bar, or a non-finite result, takes the three-term form.
    tr = high - low
    if len(tr) > 1:
        if not (_MIN(tr[1:]) >= 0):
            return _atr_last_reference(high, low, close, period)
        prev = close[:-1]
        np.subtract(np.maximum(high[1:], prev), np.minimum(low[1:], prev), out=tr[1:])
    out = wilder_last(tr, period)[0]
    if not math.isfinite(out):  # an infinite price (inf - inf tells the forms apart): the reference decides
        return _atr_last_reference(high, low, close, period)
    return out


def _atr_last_reference(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> float:
    """The three-term true range, kept for non-finite prices (where inf - inf differs between the forms)."""
    tr = high - low
    if len(tr) > 1:
        prev = close[:-1]
        tr[1:] = np.maximum(tr[1:], np.maximum(np.abs(high[1:] - prev), np.abs(low[1:] - prev)))
    return wilder_last(tr, period)[0]


def rsi_last(close: np.ndarray, period: int, k: int = 2) -> list[float]:
    """Last k Wilder RSI values, oldest first (flat reads 50, only-up reads 100, as `core.analysis.indicators.rsi`)."""
    if len(close) <= period:
        return [math.nan] * k
    delta = close[1:] - close[:-1]  # np.diff's own subtraction, without its wrapper
    # fmax, not maximum: a NaN step counts as no move, as np.where(delta > 0, delta, 0.0) made it; a zero
    # step may come out as -0.0, which changes no sum or ratio below (a sum is zero only if all terms are)
    gain = np.fmax(delta, 0.0)
    loss = np.fmax(np.negative(delta), 0.0)
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
    (centring on the first close keeps BTC-sized prices exact enough for a regime comparison).

    Both running sums live in one (2, n+1) array so their window differences and divisions by the period
    are one numpy call each (elementwise: the same floats as two calls)."""
    n = len(close)
    if n < period:
        return np.empty(0)
    c0 = close[0]
    c = np.empty((2, n + 1))
    c[:, 0] = 0.0
    x = c[:, 1:]
    np.subtract(close, c0, out=x[0])
    np.multiply(x[0], x[0], out=x[1])
    np.add.accumulate(x, axis=1, out=x)  # np.cumsum of each row (a running sum, in order), in one call
    s = c[:, period:] - c[:, :-period]
    s /= period
    mean = s[0]
    var = s[1] - mean * mean
    np.maximum(var, 0.0, out=var)
    mid = mean + c0
    num = 2.0 * num_std * np.sqrt(var)
    if _MIN(mid) > 0:  # prices: no zero mid, so the masked divide below is this plain one
        return np.divide(num, mid, out=num)
    # a masked divide instead of np.errstate + np.where: the same quotients, NaN where mid == 0
    out = np.full(len(mid), np.nan)
    np.divide(num, mid, out=out, where=mid != 0)
    return out


def width_regime(close: np.ndarray, period: int, num_std: float) -> tuple[float, float, int]:
    """(last width, mean of the finite widths (NaN under two), how many are finite) of `bollinger_width_series`: what the
    expansion state reads. When the widths' sum is finite every width is, so their mean is that sum over
    the count (the same pairwise sum numpy takes of the finite ones, which are then all of them)."""
    width = bollinger_width_series(close, period, num_std)
    if not len(width):
        return math.nan, math.nan, 0
    last = float(width[-1])
    total = float(_SUM(width))
    if math.isfinite(total):
        return last, (total / len(width) if len(width) >= 2 else math.nan), len(width)
    ref = width[np.isfinite(width)]
    return last, (mean_of(ref) if len(ref) >= 2 else math.nan), len(ref)


def vwap_last(high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray) -> tuple[float, float]:
    """(VWAP, σ) of the typical price over all given bars (one session), as `session_vwap`'s last value:
    volume-weighted when any volume traded, equal weights otherwise."""
    if len(close) == 0:
        return math.nan, math.nan
    tp = (high + low + close) / 3.0
    dev = tp - tp[0]
    v = np.where(volume > 0, volume, 0.0)
    sv = float(_SUM(v))  # ndarray.sum's own reduction, without its wrapper
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
