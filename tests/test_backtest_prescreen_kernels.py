"""The pre-screens' vectorised kernels against their plain definitions, on real bars.

The screens compare these values with thresholds only beyond a relative `MARGIN` (1e-7), so a kernel
may differ from its definition in the last bits (another summation order) but never by more than
rounding: each test bounds that error far below the margin, and the screens' outputs on real series
must be the ones the plain definitions give.
"""
from __future__ import annotations

from itertools import accumulate

import numpy as np
import pytest

from core.analysis.range.bars import Bars
from core.analysis.range.lastvalues import mean_of
from core.backtest.prescreen import _smooth, build_screen, trailing_slopes
from core.config.loading import load_config
from core.config.paths import market_data_dir
from core.data.loaders import load_candles
from core.data.resample import resample
from core.domain.timeframes import Timeframe

SERIES = {
    "xau": ("XAUUSDc", "budimanlai__forex-tick/data/XAUUSD_M5.csv", 2, False),
    "eur": ("EURUSDc", "01Javier__trading-eurusd/data/EURUSD_M5.csv", 3, False),
    "btc": ("BTCUSDc", "mahmer2011__trading_bot/data/BTCUSD_M5.csv", 3, False),
    "btc1m": ("BTCUSDc", "nautechsystems__nautilus_trader/tests/test_data/btc-perp-20211231-20220201_1m.csv", 0, True),
}


def _series(key: str, n: int = 10**9) -> tuple[str, np.ndarray]:
    sym, rel, tz, m1 = SERIES[key]
    c = load_candles(market_data_dir() / rel, tz_offset_hours=tz)
    if m1:
        c = resample(c, "M5", drop_incomplete=True)
    return sym, c[:n].copy()


def _true_range(c: np.ndarray) -> np.ndarray:
    h, lo, cl = (c[k].astype(float) for k in ("high", "low", "close"))
    tr = h - lo
    tr[1:] = np.maximum(tr[1:], np.maximum(np.abs(h[1:] - cl[:-1]), np.abs(lo[1:] - cl[:-1])))
    return tr


@pytest.mark.parametrize("key", list(SERIES))
def test_blockwise_wilder_recursion_equals_the_plain_loop(key):
    _, c = _series(key)
    d, a = 13.0 / 14.0, 1.0 / 14.0
    rng = np.random.default_rng(3)
    for x in (_true_range(c), _true_range(c)[:7], _true_range(c)[:1], _true_range(c)[:4096], rng.random(1000)):
        want = np.array(list(accumulate(x.tolist(), lambda acc, v: d * acc + a * v, initial=0.0))[1:])
        got = _smooth(x, d, a)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)
    assert len(_smooth(np.zeros(0), d, a)) == 0


@pytest.mark.parametrize("key", list(SERIES))
def test_trailing_slopes_equal_the_false_range_filters_slope(key):
    """`detect_false_range`'s slope (np.dot of the centred x with the closes less their mean) on every window."""
    _, c = _series(key, 3000)
    close = c["close"].astype(np.float64)
    lb = 96
    got = trailing_slopes(close, lb)
    assert np.isnan(got[:lb - 1]).all()
    x = np.arange(lb, dtype=np.float64) - (lb - 1) / 2.0
    xx = float(np.dot(x, x))
    for i in range(lb - 1, len(close)):
        w = Bars.closed_window(c, "M5", float(c["time"][i]) + 300, lb).close
        live = float(np.dot(x, w - mean_of(w)) / xx)
        assert abs(got[i] - live) <= 1e-12 * (np.abs(w).max() / lb), i  # the closes' scale, per bar of slope


def _frames(cfg, sym, c):
    """The feed's bars per timeframe, as the engine hands them to the range screen."""
    from core.backtest.live import LiveParts

    parts = LiveParts(cfg, sym, c, Timeframe.M5)
    try:
        return parts.frames()
    finally:
        parts.shutdown()


@pytest.mark.parametrize("key", ["xau", "btc1m"])
def test_screens_are_the_same_with_the_plain_wilder_loop(key, monkeypatch):
    """What the screens decide does not move with the recursion's last bits: the plain loop gives the same."""
    import core.backtest.prescreen as prescreen
    from core.backtest.range_screen import build_range_screen

    cfg = load_config()
    sym, c = _series(key, 15000)
    frames = _frames(cfg, sym, c)

    def screens():
        s = build_screen(cfg, sym, c, Timeframe.M5)
        r = build_range_screen(cfg, sym, c, frames, s.atr, s.entries)
        k = r.lazy.keys
        return (s.skip.tolist(), s.counts, r.ruled_out.tolist(), r.owns.tolist(), r.no_dynamic.tolist(),
                k.session_possible.tolist(), k.day_possible.tolist())

    fast = screens()
    monkeypatch.setattr(prescreen, "_smooth", lambda x, d, a: np.array(
        list(accumulate(x.tolist(), lambda acc, v: d * acc + a * v, initial=0.0))[1:]))
    assert screens() == fast
    assert sum(fast[0]) > 1000 and sum(fast[2]) > 1000


def _few_touches_reference(tcfg, high, low, end, lo, H, L, fatr, rows) -> np.ndarray:
    """`range_keys._few_touches`' definition, one row at a time on the touch bars [lo, end) themselves."""
    from core.backtest.prescreen import MARGIN
    from core.backtest.range_keys import _visits

    rd = tcfg.range_detection
    out = []
    for r in rows:
        e, s = int(end[r]), int(lo[r])
        tol = rd.touch_tolerance_atr * fatr[e - 1]
        hh, ll = high[s:e], low[s:e]
        nt_lo, nt_hi = hh >= H[r] - tol * (1 - MARGIN), hh >= H[r] - tol * (1 + MARGIN)
        nb_lo, nb_hi = ll <= L[r] + tol * (1 - MARGIN), ll <= L[r] + tol * (1 + MARGIN)
        exact = np.array_equal(nt_lo, nt_hi) and np.array_equal(nb_lo, nb_hi)
        few = min(_visits(nt_lo[None, :])[0], _visits(nb_lo[None, :])[0]) < rd.min_touches_per_side
        out.append(exact and few)
    return np.array(out, dtype=bool)


@pytest.mark.parametrize("key", ["xau", "btc1m"])
def test_few_touches_on_narrowed_windows_equal_the_per_row_definition(key, monkeypatch):
    """`_few_touches` reads only each chunk's widest touch span (rows sorted by span): the same answers as the
    per-row definition, on every row the range keys ask about (short windows at the data's start included)."""
    import core.backtest.range_keys as range_keys
    from core.backtest.range_screen import build_range_screen

    cfg = load_config()
    sym, c = _series(key, 8000)
    frames = _frames(cfg, sym, c)
    seen = []
    real = range_keys._few_touches

    def checked(tcfg, high, low, size, end, lo, H, L, fatr, rows):
        got = real(tcfg, high, low, size, end, lo, H, L, fatr, rows)
        np.testing.assert_array_equal(got, _few_touches_reference(tcfg, high, low, end, lo, H, L, fatr, rows))
        seen.append((len(rows), int(got.sum()), int((end[rows] < size).sum())))
        return got

    monkeypatch.setattr(range_keys, "_few_touches", checked)
    s = build_screen(cfg, sym, c, Timeframe.M5)
    build_range_screen(cfg, sym, c, frames, s.atr, s.entries)
    rows, few = sum(n for n, _, _ in seen), sum(f for _, f, _ in seen)
    assert len(seen) == 2 and rows > 300 and 0 < few < rows, seen
    assert sum(short for _, _, short in seen) > 50, seen  # windows shorter than their full size were checked


def _touch_tests_rows(high, low, lb, H, L, have, tol, need):
    """`range_dynamic._touch_tests` as it was written before, on a (window, bar) view of every window at once."""
    from core.backtest.prescreen import MARGIN
    from core.backtest.range_keys import _visits

    hh = np.lib.stride_tricks.sliding_window_view(high, lb)[:len(H)]
    ll = np.lib.stride_tricks.sliding_window_view(low, lb)[:len(H)]
    Hs, Ls = np.where(have, H, np.inf)[:, None], np.where(have, L, -np.inf)[:, None]
    lo_t, hi_t = (tol * (1 - MARGIN))[:, None], (tol * (1 + MARGIN))[:, None]
    nt_lo, nt_hi = hh >= Hs - lo_t, hh >= Hs - hi_t
    nb_lo, nb_hi = ll <= Ls + lo_t, ll <= Ls + hi_t
    exact = ~((nt_lo != nt_hi) | (nb_lo != nb_hi)).any(axis=1)
    ok = (_visits(nt_lo) >= need) & (_visits(nb_lo) >= need)
    return ok | ~exact, ok & exact


def _mixed(res) -> bool:
    """Both answers occur on a whole series: the comparison is not vacuous."""
    return bool(res[1].any() and not res[0].all())


@pytest.mark.parametrize("key", list(SERIES))
def test_dynamic_touch_tests_by_bar_columns_equal_the_row_layout(key, monkeypatch):
    """The dynamic range's touch tests on (bar, window) chunks give the row layout's booleans, on the inputs
    `dynamic_possible` passes on a real series, on a few hundred rows (one partial chunk) and on doctored
    inputs: NaN bars, rows without a box, edges a tolerance's last bits from a bar (counts in doubt)."""
    import core.backtest.range_dynamic as rdyn

    cfg = load_config()
    sym, c = _series(key)
    seen = []
    real = rdyn._touch_tests
    monkeypatch.setattr(rdyn, "_touch_tests", lambda *a: seen.append(a) or real(*a))
    s = build_screen(cfg, sym, c, Timeframe.M5)
    rdyn.dynamic_possible(cfg, sym, c, s.atr, s.entries)
    (high, low, lb, H, L, have, tol, need), = seen
    assert len(H) > rdyn._CHUNK and have.mean() > 0.5
    rng = np.random.default_rng(7)
    h2, l2, H2, L2, have2 = high.copy(), low.copy(), H.copy(), L.copy(), have.copy()
    h2[rng.integers(0, len(h2), 50)] = np.nan
    l2[rng.integers(0, len(l2), 50)] = np.nan
    have2[rng.integers(0, len(have2), 500)] = False
    rows = rng.integers(0, len(H2), 400)
    H2[rows] = h2[rows + lb - 1] + tol[rows]  # a bar exactly one tolerance below the edge: its count is in doubt
    L2[rows[:200]] = l2[rows[:200] + lb - 1] - tol[rows[:200]]
    cases = [(high, low, H, L, have, tol), (h2, l2, H2, L2, have2, tol),
             (high[:300 + lb - 1], low[:300 + lb - 1], H[:300], L[:300], have[:300], tol[:300])]
    doubts = 0
    for hi, lo, Hc, Lc, hv, tl in cases:
        got = real(hi, lo, lb, Hc, Lc, hv, tl, need)
        want = _touch_tests_rows(hi, lo, lb, Hc, Lc, hv, tl, need)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        doubts += int((want[0] & ~want[1]).sum())
    assert _mixed(real(*cases[0][:2], lb, *cases[0][2:], need))
    assert doubts > 0  # the doctored rows exercise the doubt branch
