"""Technical indicators over plain float64 arrays, vectorised with numpy only.

The one rule that matters here: **no value at bar t may depend on bars after t.** Range detection,
filters, scoring and backtests all read these arrays bar by bar; any look-ahead would make
backtests lie. Every function is therefore a prefix computation (cumulative sums, fixed-origin
blocks, trailing windows), and `tests/test_indicators_lookahead.py` proves it by truncating the
future on real data and demanding bit-identical results.

Conventions (kept identical to the usual TA references, so numbers match what traders see):
- Warm-up values are NaN; nothing is back-filled.
- Wilder smoothing (ATR, RSI) uses alpha = 1/period, seeded by the simple mean of the first
  `period` values; EMA uses alpha = 2/(period+1), seeded the same way.
- Leading NaNs in an input are skipped (so indicators can be chained); a NaN later on propagates.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "atr",
    "bollinger",
    "ema",
    "rsi",
    "session_vwap",
    "sma",
    "swing_highs",
    "swing_lows",
    "true_range",
    "vwap_bands",
    "wilder",
]


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _check_period(period: int) -> int:
    p = int(period)
    if p < 1:
        raise ValueError(f"period must be >= 1 (got {period})")
    return p


def _linear_recursion(x: np.ndarray, alpha: float, y0: float) -> np.ndarray:
    """y[t] = (1-alpha)*y[t-1] + alpha*x[t], y[-1] = y0, without a Python loop per element.

    The closed form y = d^(j+1) * (y0 + alpha * cumsum(x_k / d^(k+1))) overflows for long series, so it
    is applied in fixed blocks (block edges depend only on the start index, never on the series
    length, which keeps the result identical when the future is truncated).
    """
    n = len(x)
    out = np.empty(n, dtype=np.float64)
    if n == 0:
        return out
    d = 1.0 - alpha
    if d <= 0.0:
        out[:] = x
        return out
    # keep the growth factor within 1e60 per block: plenty of headroom, no precision trouble
    block = int(max(1, 60.0 / -np.log10(d)))  # independent of n: truncation must not move block edges
    decay = d ** np.arange(1, min(block, n) + 1, dtype=np.float64)
    grow = 1.0 / decay
    state = y0
    for s in range(0, n, block):
        seg = x[s : s + block]
        m = len(seg)
        acc = np.cumsum(seg * grow[:m])
        y = decay[:m] * (state + alpha * acc)
        out[s : s + m] = y
        state = y[-1]
    return out


def _seeded_smoothing(x, period: int, alpha: float) -> np.ndarray:
    """SMA-seeded exponential smoothing starting at the first finite value of x."""
    x = _f64(x)
    n = len(x)
    out = np.full(n, np.nan)
    finite = np.flatnonzero(np.isfinite(x))
    if len(finite) == 0:
        return out
    start = int(finite[0])
    seed_end = start + period  # exclusive
    if seed_end > n:
        return out
    seed = float(np.mean(x[start:seed_end]))
    out[seed_end - 1] = seed
    if seed_end < n:
        out[seed_end:] = _linear_recursion(x[seed_end:], alpha, seed)
    return out


def sma(x, period: int) -> np.ndarray:
    """Trailing simple moving average; NaN until `period` values exist."""
    period = _check_period(period)
    x = _f64(x)
    return _rolling(x, period, with_std=False)[0]


def _rolling(x: np.ndarray, period: int, with_std: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Trailing-window mean (and population σ), computed per window so σ is exact for any price level.

    Windows are processed in chunks so the temporaries stay around 8 MB even for long periods.
    """
    n = len(x)
    mean = np.full(n, np.nan)
    sd = np.full(n, np.nan) if with_std else None
    if n < period:
        return mean, sd
    win = sliding_window_view(x, period)
    step = max(1, 1_000_000 // period)
    for s in range(0, len(win), step):
        w = win[s : s + step]
        m = w.mean(axis=1)
        mean[period - 1 + s : period - 1 + s + len(w)] = m
        if sd is not None:
            sd[period - 1 + s : period - 1 + s + len(w)] = np.sqrt(((w - m[:, None]) ** 2).mean(axis=1))
    return mean, sd


def ema(x, period: int) -> np.ndarray:
    """Exponential moving average, alpha = 2/(period+1), seeded with the SMA of the first `period` values."""
    period = _check_period(period)
    return _seeded_smoothing(x, period, 2.0 / (period + 1.0))


def wilder(x, period: int) -> np.ndarray:
    """Wilder's smoothing (alpha = 1/period), seeded with the SMA of the first `period` values."""
    period = _check_period(period)
    return _seeded_smoothing(x, period, 1.0 / period)


def true_range(high, low, close) -> np.ndarray:
    """True range; the first bar has no previous close, so it is just high - low."""
    high, low, close = _f64(high), _f64(low), _f64(close)
    tr = high - low
    if len(tr) > 1:
        prev = close[:-1]
        tr[1:] = np.maximum(tr[1:], np.maximum(np.abs(high[1:] - prev), np.abs(low[1:] - prev)))
    return tr


def atr(high, low, close, period: int = 14) -> np.ndarray:
    """Average true range with Wilder smoothing; first value at index period-1 (mean of the first TRs)."""
    return wilder(true_range(high, low, close), period)


def bollinger(close, period: int = 20, num_std: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mid, upper, lower, width): SMA ± num_std·σ (population σ, as TA-Lib), width = (upper-lower)/mid.

    A trailing window per bar (not cumulative sums of squares) keeps σ exact for BTC-sized prices.
    """
    period = _check_period(period)
    close = _f64(close)
    mid, sd = _rolling(close, period, with_std=True)
    upper = mid + num_std * sd
    lower = mid - num_std * sd
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.where(mid != 0, (upper - lower) / mid, np.nan)
    return mid, upper, lower, width


def rsi(close, period: int = 14) -> np.ndarray:
    """Wilder RSI; NaN for the first `period` bars. A flat market reads 50, only-up reads 100."""
    period = _check_period(period)
    close = _f64(close)
    n = len(close)
    out = np.full(n, np.nan)
    if n <= period:
        return out
    delta = np.diff(close)
    gain = np.where(delta > 0, delta, 0.0)
    loss = np.where(delta < 0, -delta, 0.0)
    avg_gain = wilder(gain, period)
    avg_loss = wilder(loss, period)
    with np.errstate(divide="ignore", invalid="ignore"):
        rs_val = 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    rs_val = np.where(avg_loss == 0, np.where(avg_gain == 0, 50.0, 100.0), rs_val)
    rs_val = np.where(np.isnan(avg_gain) | np.isnan(avg_loss), np.nan, rs_val)
    out[1:] = rs_val
    return out


def _segment_cumsum(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Cumulative sum that restarts at every index in `starts` (starts[0] must be 0)."""
    c = np.cumsum(x)
    offsets = np.zeros(len(starts))
    offsets[1:] = c[starts[1:] - 1]
    lengths = np.diff(np.append(starts, len(x)))
    return c - np.repeat(offsets, lengths)


def session_vwap(
    time, high, low, close, volume, session_start_hour_utc: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Session VWAP of the typical price and its volume-weighted σ, reset at each session start (UTC).

    The session of a bar is the 24 h window starting at `session_start_hour_utc` that contains its
    open time. Bands are `vwap ± k·sigma` (see `vwap_bands`). Until a session has traded any volume
    (tick volume can be 0 on quiet FX bars) the bars are weighted equally, so VWAP is never 0/0.
    Prices are centred on the session's first typical price before squaring, so σ stays exact for
    BTC-sized prices.
    """
    t = _f64(time)
    tp = (_f64(high) + _f64(low) + _f64(close)) / 3.0
    v = np.nan_to_num(_f64(volume), nan=0.0)
    v = np.where(v > 0, v, 0.0)
    n = len(t)
    if n == 0:
        return np.empty(0), np.empty(0)
    session = np.floor((t - session_start_hour_utc * 3600.0) / 86400.0)
    starts = np.flatnonzero(np.r_[True, session[1:] != session[:-1]])
    lengths = np.diff(np.append(starts, n))
    ref = np.repeat(tp[starts], lengths)
    dev = tp - ref

    cv = _segment_cumsum(v, starts)
    cdv = _segment_cumsum(dev * v, starts)
    cd2v = _segment_cumsum(dev * dev * v, starts)
    cn = _segment_cumsum(np.ones(n), starts)
    cd = _segment_cumsum(dev, starts)
    cd2 = _segment_cumsum(dev * dev, starts)

    weighted = cv > 0
    w = np.where(weighted, cv, cn)
    m1 = np.where(weighted, cdv, cd) / w
    m2 = np.where(weighted, cd2v, cd2) / w
    vwap = ref + m1
    sigma = np.sqrt(np.maximum(m2 - m1 * m1, 0.0))
    return vwap, sigma


def vwap_bands(vwap, sigma, k: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """(upper, lower) = vwap ± k·sigma."""
    vwap, sigma = _f64(vwap), _f64(sigma)
    return vwap + k * sigma, vwap - k * sigma


def _fractal(x: np.ndarray, n: int, higher: bool) -> np.ndarray:
    n = int(n)
    if n < 1:
        raise ValueError(f"fractal half-width n must be >= 1 (got {n})")
    length = len(x)
    out = np.full(length, np.nan)
    if length < 2 * n + 1:
        return out
    centre = x[n : length - n]
    ok = np.ones(len(centre), dtype=bool)
    for k in range(1, n + 1):
        left = x[n - k : length - n - k]
        right = x[n + k : length - n + k]
        if higher:
            ok &= (centre > left) & (centre > right)
        else:
            ok &= (centre < left) & (centre < right)
    # reported at the confirming bar t = pivot + n: nothing after t is used
    out[2 * n :] = np.where(ok, centre, np.nan)
    return out


def swing_highs(high, n: int = 2) -> np.ndarray:
    """Fractal swing highs, reported where confirmed: out[t] = high[t-n] if bar t-n is strictly higher
    than the n bars on each side, else NaN. Equal highs do not count (no pivot on a flat top)."""
    return _fractal(_f64(high), n, higher=True)


def swing_lows(low, n: int = 2) -> np.ndarray:
    """Fractal swing lows, reported where confirmed (mirror of `swing_highs`)."""
    return _fractal(_f64(low), n, higher=False)
