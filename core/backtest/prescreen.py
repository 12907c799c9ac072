"""Pre-screen: the bars on which the live analysis provably cannot approve a trade, found once per run.

Why: the analysis is ~90 % of a backtest's time, and on most bars it says no for reasons that need no
range at all. Each test here is a *necessary condition* of `core.analysis.pipeline.analyse` returning
`passed=True`, read off that code, so skipping the call on a bar that fails one cannot change a
decision (`tests/test_backtest_prescreen.py` runs real bars of every symbol with and without it and
asserts identical signals and trades):

* false range, trend: `detect_false_range` flags |least-squares slope of the last `lookback_bars`
  closes| / ATR > `max_trend_slope_atr`, and volume imbalance |up - down| / (up + down) >
  `max_volume_imbalance`. Neither reads the range, and the check runs whenever a range was found;
  without a range `range_validity` blocks anyway. Either way the analysis is blocked.
* activity (`check_trade_activity_criteria`, blocking): ATR % of price < `min_atr_pct`, mean tick
  volume of the last 3 bars < `min_tick_volume`, or quote spread / ATR > `max_spread_atr_ratio`.

Look-ahead: bar i's values use bars 0..i (the trailing window the analysis cuts at the close of bar
i) and the quote at that instant, which is the open of the bar then starting (exactly the tick
`PaperBroker` hands the analysis); nothing later. The ATR is the analysis' own windowed Wilder ATR
(seeded at the window's first bar), obtained in closed form from one pass over the series: the seed's
influence is carried exactly, not dropped. Float results may differ from the analysis' own in the
last bits (other summation order), so a bar is skipped only when it fails a threshold by a relative
margin `MARGIN` many orders of magnitude above any rounding difference; bars that fail narrowly
are simply analysed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from core.config.model import AppConfig
from core.domain.timeframes import Timeframe

MARGIN = 1e-7  # relative; rounding differences between two float summation orders here are ~1e-13


@dataclass
class Screen:
    skip: np.ndarray  # bool per bar: the analysis at the close of bar i cannot pass
    counts: dict[str, int] = field(default_factory=dict)  # bars failing each test (overlapping)
    atr: np.ndarray | None = None  # the analysis' windowed ATR per bar (to rounding)
    entries: list[np.ndarray] = field(default_factory=list)  # bid, ask, close: every entry a setup can use


def _surely_gt(x: np.ndarray, thr: float) -> np.ndarray:
    return np.isfinite(x) & (x > thr + MARGIN * (abs(thr) + np.abs(x)))


def _surely_lt(x: np.ndarray, thr: float) -> np.ndarray:
    return np.isfinite(x) & (x < thr - MARGIN * (abs(thr) + np.abs(x)))


def windowed_wilder(x_first: np.ndarray, x: np.ndarray, period: int, window: int,
                    partial: bool = False) -> np.ndarray:
    """For each i >= window-1: Wilder smoothing of the window x[i-window+1..i] seeded with the SMA of
    its first `period` values, where the window's first value is `x_first[i-window+1]` instead of x
    (an ATR window's first true range is high - low: it has no previous close). With `partial`, also
    for period-1 <= i < window-1, where the window is the series' first i+1 values (the analysis cuts
    a short window at the start of the data, and a backtest starts long before a full window).

    One recursion F over the whole series; the window's value differs from F_i only through the seed,
    whose effect after m = window - period steps is d^m (seed - F at the seed's bar), added back.
    """
    n = len(x)
    out = np.full(n, np.nan)
    if n < period or window < period:
        return out
    a = 1.0 / period
    d = 1.0 - a
    f = _smooth(x, d, a)
    c = np.concatenate(([0.0], np.cumsum(x)))
    if partial:  # windows starting at the first value: m = i - period + 1 steps after the seed
        i = np.arange(period - 1, min(window - 1, n))
        seed0 = (x_first[0] + (c[period] - c[1])) / period
        out[i] = f[i] + d ** (i - period + 1) * (seed0 - f[period - 1])
    if n < window:
        return out
    s = np.arange(0, n - window + 1)  # window starts
    seed = (x_first[s] + (c[s + period] - c[s + 1])) / period
    m = window - period
    out[window - 1:] = f[s + window - 1] + d**m * (seed - f[s + period - 1])
    return out


def _smooth(x: np.ndarray, d: float, a: float) -> np.ndarray:
    """F_i = d F_(i-1) + a x_i from F_(-1) = 0, block-wise: the recursion runs down the columns of a
    (block length, blocks) table, all blocks at once from zero, then each block adds d^(k+1) times the
    end of the blocks before it (a short scalar recursion over the blocks). Equal to the plain loop
    to the last bits (the carries are sums of the same terms, added in another order)."""
    n = len(x)
    if n == 0:
        return np.zeros(0)
    b = max(1, math.isqrt(n))
    nb = -(-n // b)
    col = np.zeros(b * nb)
    col[:n] = x
    col = (a * col).reshape(nb, b).T.copy()  # row k: the k-th value of every block
    acc = np.zeros(nb)
    for k in range(b):
        acc = d * acc + col[k]
        col[k] = acc
    carry, c = [0.0] * nb, 0.0
    db = d**b
    for j, end in enumerate(col[b - 1].tolist()):  # F at the end of block j-1, for block j
        carry[j] = c
        c = end + db * c
    col += d ** np.arange(1, b + 1)[:, None] * np.array(carry)[None, :]
    return col.T.ravel()[:n]


def trailing_slopes(close: np.ndarray, lb: int) -> np.ndarray:
    """Least-squares slope (per bar) of every trailing window of `lb` closes, NaN before the first, as
    `detect_false_range` computes it (to rounding). One correlation with the centred x: sum(x) == 0, so the
    mean (or any constant, here the first close, which keeps the terms small) does not change the dot."""
    out = np.full(len(close), np.nan)
    if len(close) >= lb >= 2:
        x = np.arange(lb, dtype=np.float64) - (lb - 1) / 2.0
        out[lb - 1:] = np.correlate(close - close[0], x, "valid") / float(np.dot(x, x))
    return out


def _quote(cfg: AppConfig, symbol: str, c: np.ndarray, tf_sec: int) -> tuple[np.ndarray, np.ndarray]:
    """(bid, ask) of the tick `PaperBroker.tick` gives at the close of each bar (see `_quote` there):
    the bar covering that instant opens at bid = its open, else the last closed bar's close."""
    spec = cfg.symbols[symbol]
    t = c["time"].astype(np.int64)
    now = t + tf_sec
    j = np.searchsorted(t, now, side="right") - 1
    covering = t[j] + tf_sec > now
    idx = np.where(covering, j, np.arange(len(c)))
    bid = np.where(covering, c["open"][idx], c["close"][idx])
    pts = c["spread"][idx].astype(np.int64)
    pts = np.where(pts != 0, pts, spec.default_spread_points)
    ask = bid + pts * spec.point
    ask = np.where(covering, np.round(ask, spec.digits + 2), ask)
    return bid, ask


def build_screen(cfg: AppConfig, symbol: str, candles: np.ndarray, timeframe: Timeframe) -> Screen | None:
    """None when the shortcut does not apply (primary timeframe is not the analysis', or the bar times
    are not strictly increasing, so bar indices and the feed's windows might not line up)."""
    from core.analysis.facade import window_sizes

    tcfg = cfg.for_symbol(symbol)
    rd = tcfg.range_detection
    if timeframe.value != rd.timeframe or len(candles) < 2:
        return None
    c = candles
    t = c["time"].astype(np.int64)
    if not np.all(np.diff(t) > 0):
        return None
    n = len(c)
    window = window_sizes(tcfg)[rd.timeframe]
    skip = np.zeros(n, dtype=bool)
    if n < window:
        return Screen(skip, {})
    high = c["high"].astype(np.float64)
    low = c["low"].astype(np.float64)
    close = c["close"].astype(np.float64)
    opn = c["open"].astype(np.float64)
    vol = c["tick_volume"].astype(np.float64)
    ea = tcfg.effective_atr

    hl = high - low
    tr = hl.copy()
    prev = close[:-1]
    tr[1:] = np.maximum(tr[1:], np.maximum(np.abs(high[1:] - prev), np.abs(low[1:] - prev)))
    atr = windowed_wilder(hl, tr, ea.atr_period, window, partial=True)
    bid, ask = _quote(cfg, symbol, c, timeframe.seconds)
    mid, spread = (bid + ask) / 2, ask - bid

    counts: dict[str, int] = {}
    full = np.isfinite(atr)  # the analysis' ATR is known (a full or a leading partial window)
    ok_atr = np.isfinite(atr) & (atr > 0)

    # false range 1: trend inside the box (slope of the last `lookback_bars` closes, in ATR per bar)
    fr = tcfg.false_range
    lb = min(rd.lookback_bars, window)
    slope = np.full(n, np.nan)
    if lb >= 3:
        slope = trailing_slopes(close, lb)
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(ok_atr, slope / atr, np.nan)
    trend = _surely_gt(np.abs(slope), fr.max_trend_slope_atr) & full & ok_atr
    counts["trend"] = int(trend.sum())

    # false range 2: one-sided volume over the same bars
    cs_up = np.concatenate(([0.0], np.cumsum(np.where(close > opn, vol, 0.0))))
    cs_dn = np.concatenate(([0.0], np.cumsum(np.where(close < opn, vol, 0.0))))
    up = np.full(n, np.nan)
    dn = np.full(n, np.nan)
    up[lb - 1:] = cs_up[lb:] - cs_up[:-lb]
    dn[lb - 1:] = cs_dn[lb:] - cs_dn[:-lb]
    with np.errstate(divide="ignore", invalid="ignore"):
        imb = np.where(up + dn > 0, (up - dn) / (up + dn), np.nan)
    push = _surely_gt(np.abs(imb), fr.max_volume_imbalance) & full
    counts["volume_push"] = int(push.sum())

    # activity: too quiet, too few ticks, spread too wide for the ATR
    a = tcfg.activity
    with np.errstate(divide="ignore", invalid="ignore"):
        atr_pct = np.where(ok_atr & (mid > 0), atr / mid * 100.0, np.nan)
        ratio = np.where(ok_atr & (spread > 0), spread / atr, np.nan)
    cs_v = np.concatenate(([0.0], np.cumsum(vol)))
    vol3 = np.full(n, np.nan)
    vol3[2:] = (cs_v[3:] - cs_v[:-3]) / 3.0
    quiet = (_surely_lt(atr_pct, a.min_atr_pct) | _surely_lt(vol3, a.min_tick_volume)
             | _surely_gt(ratio, a.max_spread_atr_ratio)) & full
    counts["activity"] = int(quiet.sum())

    skip = trend | push | quiet
    counts["any"] = int(skip.sum())
    return Screen(skip, counts, atr, [bid, ask, close])


def describe(screen: Screen | None) -> str:
    if screen is None:
        return "pre-screen off"
    return ", ".join(f"{k} {v}" for k, v in screen.counts.items()) if screen.counts else "nothing screened"


__all__ = ["MARGIN", "Screen", "build_screen", "describe", "trailing_slopes", "windowed_wilder"]
