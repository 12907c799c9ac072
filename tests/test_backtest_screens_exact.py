"""The pre-screens as made faster equal the ones before (`tests/screens_reference.py`, the code they replaced),
array for array, on the benchmark's real series, slices of them (short data, a start mid-series) and edge cases."""
from __future__ import annotations

import numpy as np
import pytest

import core.backtest.range_keys as range_keys
import core.backtest.range_screen as range_screen
from core.backtest.live import LiveParts
from core.backtest.prescreen import build_screen
from core.config.loading import load_config
from core.config.paths import market_data_dir
from core.data.loaders import load_candles
from core.data.resample import resample
from core.domain.timeframes import Timeframe
from tests import screens_reference as ref

SERIES = {  # bench/backtest.py's
    "xau": ("XAUUSDc", "budimanlai__forex-tick/data/XAUUSD_M5.csv", 2, False),
    "eur": ("EURUSDc", "01Javier__trading-eurusd/data/EURUSD_M5.csv", 3, False),
    "btc": ("BTCUSDc", "mahmer2011__trading_bot/data/BTCUSD_M5.csv", 3, False),
    "btc1m": ("BTCUSDc", "nautechsystems__nautilus_trader/tests/test_data/btc-perp-20211231-20220201_1m.csv", 0, True),
    "xau2": ("XAUUSDc", "mahmer2011__trading_bot/data/XAUUSD_M5.csv", 3, False),
}
_CACHE: dict[str, tuple[str, np.ndarray]] = {}


def _series(key: str) -> tuple[str, np.ndarray]:
    if key not in _CACHE:
        sym, rel, tz, m1 = SERIES[key]
        c = load_candles(market_data_dir() / rel, tz_offset_hours=tz)
        _CACHE[key] = sym, resample(c, "M5", drop_incomplete=True) if m1 else c
    return _CACHE[key]


def _screens(cfg, sym: str, c: np.ndarray) -> tuple:
    """Every array the engine and `RangeScreen.could_pass` read, as bytes (NaN compares equal)."""
    s = build_screen(cfg, sym, c, Timeframe.M5)
    if s is None or s.atr is None:
        return (s is None,)
    parts = LiveParts(cfg, sym, c, Timeframe.M5)
    try:
        r = range_screen.build_range_screen(cfg, sym, c, parts.frames(), s.atr, s.entries)
    finally:
        parts.shutdown()
    k = r.lazy.keys
    arrays = [s.skip, s.atr, *s.entries, r.ruled_out, r.no_dynamic, r.owns, r.inside, r.edges_h, r.edges_l,
              k.nows, k.win_start, k.win_end, k.session_possible, k.day_possible,
              *(k.end[tf] for tf in (r.lazy.stf, "H1"))]
    return (s.counts, [(a.dtype.str, a.tobytes()) for a in arrays], k.session_edges, k.day_edges,
            int(k.session_possible.sum()), int(k.day_possible.sum()), int(r.ruled_out.sum()))


def _both(cfg, sym, c, monkeypatch) -> tuple[tuple, tuple]:
    new = _screens(cfg, sym, c)
    with monkeypatch.context() as m:
        m.setattr(range_screen, "build_bar_keys", ref.build_bar_keys)
        old = _screens(cfg, sym, c)
    return new, old


@pytest.mark.parametrize("key", list(SERIES))
def test_screens_equal_the_reference_on_whole_series(key, monkeypatch):
    cfg = load_config()
    sym, c = _series(key)
    new, old = _both(cfg, sym, c, monkeypatch)
    assert new == old
    assert new[4] > 50 and new[5] > 40 and new[6] > len(c) // 2  # candidates possible and ruled out: not vacuous


@pytest.mark.parametrize("cut", [(0, 40), (0, 400), (0, 2500), (7000, 9500), (30000, 31000)])
def test_screens_equal_the_reference_on_slices(cut, monkeypatch):
    """Short data (windows shorter than their full size, no previous day yet) and a start mid-series."""
    cfg = load_config()
    sym, c = _series("xau")
    new, old = _both(cfg, sym, c[cut[0]:cut[1]].copy(), monkeypatch)
    assert new == old


def test_screens_equal_the_reference_across_a_gap_and_a_repeated_day(monkeypatch):
    """Bars missing for days (a weekend-like hole in the frames) and a series whose times are not strictly
    increasing (the screens are off: both say so)."""
    cfg = load_config()
    sym, c = _series("eur")
    c = c[:6000].copy()
    c["time"][3000:] += 5 * 86400
    new, old = _both(cfg, sym, c, monkeypatch)
    assert new == old and new[6] > 1000
    bad = c.copy()
    bad["time"][100] = bad["time"][99]
    new, old = _both(cfg, sym, bad, monkeypatch)
    assert new == old == (True,)


def test_runs_spread_back_what_each_row_gives():
    rng = np.random.default_rng(5)
    a = np.repeat(rng.integers(0, 4, 60), rng.integers(1, 5, 60))  # runs, and values that come back later
    b = np.where(rng.random(len(a)) < 0.1, np.nan, np.repeat(1.0, len(a)))  # NaN: a row of its own
    first, run = range_keys._runs(a, b)
    np.testing.assert_array_equal(a[first][run], a)
    np.testing.assert_array_equal(b[first][run], b)  # NaN rows are their own run, so they come back NaN
    assert first[0] == 0 and len(first) < len(a) and (np.diff(first) > 0).all()
    one = range_keys._runs(np.zeros(1))
    assert one[0].tolist() == [0] and one[1].tolist() == [0]
    empty = range_keys._runs(np.zeros(0))
    assert len(empty[0]) == len(empty[1]) == 0


def test_pick_on_rows_equals_the_whole_series_rule():
    """`_Pick.rules_out` at chosen bars (the first hour's bars included, where no full hour of closes exists)
    is the whole-series rule read at those bars."""
    cfg = load_config()
    sym, c = _series("btc")
    tcfg = cfg.for_symbol(sym)
    n = 3000
    close = c["close"][:n].astype(np.float64)
    rng = np.random.default_rng(11)
    inside = rng.random(n) < 0.7
    H = close + rng.random(n) * 50
    L = close - rng.random(n) * 50
    H[::7] = close[::7] - 5  # closes beyond the edges: the count and the pool test both fire
    m5, slack = rng.random(n) * 20 + 1, np.full(n, 1e-3)
    for ins in (inside, None):
        pick = range_keys._Pick(close, ins, 300, tcfg)
        whole = ref.pick_rules_out(pick, H, L, m5, slack)
        rows = np.sort(rng.choice(n, 900, replace=False))
        rows[:5] = np.arange(5)
        got = pick.rules_out(rows, H[rows], L[rows], m5[rows], slack[rows])
        np.testing.assert_array_equal(got, whole[rows])
        assert 0 < got.sum() < len(rows)
