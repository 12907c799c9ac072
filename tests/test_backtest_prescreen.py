"""The pre-screen only skips bars the live analysis rejects, so a backtest decides exactly the same.

Three checks on real bars of every symbol: the closed-form windowed ATR equals the analysis' own;
on bars the screen skips, the real analysis is called anyway and must not pass; and a backtest with
and without the screen (and its flat-bar clock jumps) yields identical signals and trades.
"""
from __future__ import annotations

import numpy as np
import pytest

from core.analysis.facade import window_sizes
from core.analysis.range.bars import Bars
from core.analysis.range.lastvalues import atr_last
from core.backtest.engine import BacktestEngine, BacktestSpec
from core.backtest.live import LiveParts
from core.backtest.prescreen import build_screen, windowed_wilder
from core.backtest.range_dynamic import _rolling
from core.backtest.range_keys import _visits
from core.backtest.range_screen import build_range_screen
from core.config.loading import load_config
from core.config.paths import market_data_dir
from core.data.loaders import load_candles
from core.data.resample import resample
from core.domain.timeframes import Timeframe

SERIES = {
    "xau": ("XAUUSDc", "budimanlai__forex-tick/data/XAUUSD_M5.csv", 2, False, 0),
    "eur": ("EURUSDc", "01Javier__trading-eurusd/data/EURUSD_M5.csv", 3, False, 0),
    "btc": ("BTCUSDc", "mahmer2011__trading_bot/data/BTCUSD_M5.csv", 3, False, 6000),
    "btc1m": ("BTCUSDc", "nautechsystems__nautilus_trader/tests/test_data/btc-perp-20211231-20220201_1m.csv", 0,
              True, 0),
}


def _series(key: str, n: int) -> tuple[str, np.ndarray]:
    sym, rel, tz, m1, offset = SERIES[key]
    c = load_candles(market_data_dir() / rel, tz_offset_hours=tz)
    if m1:
        c = resample(c, "M5", drop_incomplete=True)
    return sym, c[offset:offset + n].copy()


def test_closed_form_windowed_atr_equals_the_analysis_atr():
    cfg = load_config()
    sym, c = _series("btc1m", 3000)
    n = window_sizes(cfg.for_symbol(sym))["M5"]
    h, lo, cl = (c[k].astype(float) for k in ("high", "low", "close"))
    tr = h - lo
    tr[1:] = np.maximum(tr[1:], np.maximum(np.abs(h[1:] - cl[:-1]), np.abs(lo[1:] - cl[:-1])))
    atr = windowed_wilder(h - lo, tr, 14, n)
    assert np.isnan(atr[: n - 1]).all()
    for i in range(n - 1, len(c), 37):
        b = Bars.closed_window(c, "M5", float(c["time"][i]) + 300, n)
        live = atr_last(b.high, b.low, b.close, 14)
        assert abs(atr[i] - live) <= 1e-12 * live, i
    # the leading short windows (the data's first i+1 bars), which a backtest analyses from its warm-up on
    early = windowed_wilder(h - lo, tr, 14, n, partial=True)
    assert np.isnan(early[:13]).all() and np.array_equal(early[n - 1:], atr[n - 1:], equal_nan=True)
    for i in range(13, n - 1):
        b = Bars.closed_window(c, "M5", float(c["time"][i]) + 300, n)
        assert len(b) == i + 1
        live = atr_last(b.high, b.low, b.close, 14)
        assert abs(early[i] - live) <= 1e-12 * live, i


@pytest.mark.parametrize("key", ["xau", "btc"])
def test_screen_inputs_equal_the_live_ones(key):
    """The quote and the dynamic range edges the screens use are the ones the live objects produce."""
    from core.analysis.range.detector import RangeBoundaryDetector
    from core.backtest.range_dynamic import dynamic_possible
    from core.domain.models import RangeStructure

    cfg = load_config()
    sym, c = _series(key, 2000)
    tcfg = cfg.for_symbol(sym)
    n = window_sizes(tcfg)["M5"]
    screen = build_screen(cfg, sym, c, Timeframe.M5)
    bid, ask, _close = screen.entries
    _, edges_h, edges_l = dynamic_possible(cfg, sym, c, screen.atr, screen.entries)
    det = RangeBoundaryDetector(tcfg, sym)
    parts = LiveParts(cfg, sym, c, Timeframe.M5)
    boxes = 0
    try:
        for i in range(n - 1, len(c) - 1, 7):
            now = float(c["time"][i]) + 300
            parts.advance_to(now)
            tick = parts.broker.tick(sym)
            assert (tick.bid, tick.ask) == (bid[i], ask[i]), i
            bars = Bars.closed_window(c, "M5", now, n)
            live = det.detect_range(bars, "dynamic", atr=atr_last(bars.high, bars.low, bars.close, 14), as_of=now,
                                    apply_width_limits=False)
            if isinstance(live, RangeStructure):
                boxes += 1
                assert (live.range_high, live.range_low) == (edges_h[i], edges_l[i]), i
            else:
                assert np.isnan(edges_h[i]), i
    finally:
        parts.shutdown()
    assert boxes > 100


@pytest.mark.parametrize("key", list(SERIES))
def test_every_skipped_bar_is_rejected_by_the_live_analysis(key):
    cfg = load_config()
    sym, c = _series(key, 2500)
    screen = build_screen(cfg, sym, c, Timeframe.M5)
    assert screen is not None
    skipped = np.flatnonzero(screen.skip[:-1])
    assert len(skipped) > 20, screen.counts  # the screen must be doing something on every symbol
    parts = LiveParts(cfg, sym, c, Timeframe.M5)
    try:
        for i in skipped[:: max(1, len(skipped) // 120)]:
            now = float(c["time"][i]) + 300
            parts.advance_to(now)
            res = parts.analyse(now)
            assert not res.passed, (key, int(i), [f.name for f in res.failures])
            assert res.failures, (key, int(i))
    finally:
        parts.shutdown()


@pytest.mark.parametrize("key", list(SERIES))
def test_every_bar_the_range_screen_rules_out_is_rejected_by_the_live_analysis(key):
    """Bars where no candidate range (dynamic, session, previous day) could be tradeable with price at
    its edge: the real analysis must say no on every one checked, whatever the session."""
    cfg = load_config()
    sym, c = _series(key, 2500)
    screen = build_screen(cfg, sym, c, Timeframe.M5)
    parts = LiveParts(cfg, sym, c, Timeframe.M5)
    try:
        ranges = build_range_screen(cfg, sym, c, parts.frames(), screen.atr, screen.entries)
        assert ranges is not None
        out = [i for i in range(len(c) - 1) if not ranges.could_pass(i, float(c["time"][i]) + 300)]
        assert len(out) > 200, key  # it must rule out a good share of bars on every symbol
        assert ranges.lazy_checks > 0
        for i in out[:: max(1, len(out) // 150)]:
            now = float(c["time"][i]) + 300
            parts.advance_to(now)
            res = parts.analyse(now)
            assert not res.passed, (key, i, [f.name for f in res.failures], [s.viable for s in res.strategies])
    finally:
        parts.shutdown()


def _sig(s):
    return s.model_dump()


def _trade(t):
    return t.model_dump(exclude={"proposal_id"})  # a random id per proposal, by design


@pytest.mark.parametrize("key", list(SERIES))
def test_backtest_with_and_without_the_prescreen_decides_identically(key):
    cfg = load_config()
    sym, c = _series(key, 2200)
    fast = BacktestEngine(cfg, BacktestSpec(sym, c)).run()
    slow = BacktestEngine(cfg, BacktestSpec(sym, c), prescreen=False).run()
    assert fast.prescreened > 0 and slow.prescreened == 0
    # flat bars: each is analysed, session-gated or (fast only) pre-screened; the analysed ones shrink
    assert fast.analysis_calls + fast.prescreened + fast.session_gated == slow.analysis_calls + slow.session_gated
    assert fast.analysis_calls < slow.analysis_calls
    assert [_sig(s) for s in fast.signals] == [_sig(s) for s in slow.signals]
    assert fast.trades and len(fast.trades) == len(slow.trades)
    assert [_trade(t) for t in fast.trades] == [_trade(t) for t in slow.trades]
    assert fast.metrics.trades == slow.metrics.trades and fast.final_balance == slow.final_balance


@pytest.mark.parametrize("key", ["xau", "eur", "btc1m"])
def test_precomputed_range_keys_equal_the_live_ones_and_rule_out_only_empty_candidates(key):
    """`core.backtest.range_keys`: per bar, the session window is the live function's, the window ends
    are `Bars.closed_window`'s, and wherever the session candidate is ruled out the exact lazy path
    (the live detector) finds no candidate either, or one that surely is not the analysis' passing pick."""
    from core.domain.sessions import window_containing_or_before

    cfg = load_config()
    sym, c = _series(key, 6000)
    tcfg = cfg.for_symbol(sym)
    screen = build_screen(cfg, sym, c, Timeframe.M5)
    parts = LiveParts(cfg, sym, c, Timeframe.M5)
    try:
        ranges = build_range_screen(cfg, sym, c, parts.frames(), screen.atr, screen.entries)
        lazy = ranges.lazy
    finally:
        parts.shutdown()
    keys = lazy.keys
    name = tcfg.range_detection.session_range
    definition = tcfg.sessions.definitions[name]
    sizes = window_sizes(tcfg)
    ruled_out = {"session": 0, "previous_day": 0}
    short = {"session": 0, "previous_day": 0}  # ruled out on a window shorter than its full size (data start)
    for i in range(0, len(c) - 1):
        now = float(c["time"][i]) + 300
        assert keys.nows[i] == now
        if i % 11 == 0:
            w = window_containing_or_before(name, definition, now - 1.0)
            assert (keys.win_start[i], keys.win_end[i]) == (w.start, w.end), i
            for tf in (lazy.stf, "H1"):  # the frames candidates are cut from
                b = Bars.closed_window(lazy.frames[tf], tf, now, 10**9)
                assert keys.end[tf][i] == len(b), (i, tf)
            assert lazy._key("session", now, i) == lazy._slow_key("session", now), i
            assert lazy._key("previous_day", now, i) == lazy._slow_key("previous_day", now), i
        m5 = float(screen.atr[i])
        if not (np.isfinite(m5) and m5 > 0):
            continue
        for kind, possible in (("session", keys.session_possible), ("previous_day", keys.day_possible)):
            if not possible[i]:
                ruled_out[kind] += 1
                tf = lazy.stf if kind == "session" else "H1"
                short[kind] += keys.end[tf][i] < sizes[tf]
                cand = lazy._candidate(kind, now, i, m5)  # none, or one the analysis would not judge
                assert cand is None or not ranges._admits(i)(cand.range_high, cand.range_low), (kind, i)
    assert min(ruled_out.values()) > 1000, ruled_out  # it must be ruling out a good share of bars
    assert min(short.values()) > 200, short
    # the bars the engine skips without asking the screen: the screen says no there, re-entry rule or not
    never = [i for i in range(len(c) - 1) if ranges.ruled_out[i]]
    assert len(never) > 1000
    assert not any(ranges.could_pass(i, float(c["time"][i]) + 300) for i in never)


def test_rolling_extremes_and_visits_equal_their_per_window_definitions():
    """`_rolling` (block-wise for long windows, shifted copies for short ones) and `_visits` (byte rises) are
    the per-window np.max / np.min and `count_touches`' visit count, NaN propagation included."""
    from core.analysis.range.detector import count_touches

    rng = np.random.default_rng(2)
    for n in (1, 5, 7, 8, 92, 95, 184, 1000, 1003):
        x = 100.0 + rng.standard_normal(n).cumsum()
        x[rng.integers(0, n, max(1, n // 50))] = np.nan
        for k in (1, 2, 3, 7, 8, 9, 92):
            for fn in (np.max, np.min):
                want = np.full(n, np.nan)
                if n >= k:
                    want[k - 1:] = fn(np.lib.stride_tricks.sliding_window_view(x, k), axis=1)
                np.testing.assert_array_equal(_rolling(x, k, fn), want)
    near = rng.random((300, 96)) < 0.3
    got = _visits(near)
    for row, g in zip(near, got, strict=True):
        top, _ = count_touches(row.astype(float), np.ones(96), 1.0, -1.0, 0.0)  # near top <=> value 1.0 >= 1.0
        assert g == top
    np.testing.assert_array_equal(_visits(np.ascontiguousarray(near.T), axis=0), got)  # a column per window


def _previous_day_span_reference(tl: list[float], s: int, t: int, need: int):
    """The scalar loop `range_keys.previous_day_spans` replaced (the detector's `_previous_day_edges` steps)."""
    import math
    from bisect import bisect_left

    if t <= s:
        return None
    clip = lambda j: min(max(j, s), t)  # noqa: E731
    day0 = math.floor(tl[t - 1] / 86400.0) * 86400.0
    for _ in range(5):
        p0, p1 = clip(bisect_left(tl, day0)), clip(bisect_left(tl, day0 + 86400.0))
        if p1 - p0 >= need:
            break
        if p0 <= s:
            break
        day0 = math.floor(tl[p0 - 1] / 86400.0) * 86400.0
    if p1 - p0 < need:
        return None
    return p0, p1, bisect_left(tl, day0)


@pytest.mark.parametrize("key", list(SERIES))
def test_previous_day_spans_equal_the_scalar_steps(key):
    from core.backtest.range_keys import previous_day_spans

    sym, c = _series(key, 6000)
    h1 = resample(c, "H1", drop_incomplete=False)
    times = h1["time"].astype(np.float64)
    tl = times.tolist()
    n = len(times)
    rng = np.random.default_rng(4)
    s = rng.integers(0, n, 3000)
    t = np.clip(s + rng.integers(-3, 160, 3000), 0, n)
    s[:50], t[:50] = 0, np.arange(50)  # windows at the very start, empty ones included
    for need in (2, 4):
        p0, p1, p2, none = previous_day_spans(times, s, t, need)
        for j in range(len(s)):
            want = _previous_day_span_reference(tl, int(s[j]), int(t[j]), need)
            assert bool(none[j]) == (want is None), j
            if want is not None:
                assert (p0[j], p1[j], p2[j]) == want, j


def test_session_windows_equal_the_live_function_on_every_instant():
    """`range_keys.session_windows` cuts the span at each next window's start before bisecting: on real bar
    times (a year of XAUUSD M5, both DST changes) and on sparse times with gaps of hours to weeks, every
    answer must be `window_containing_or_before`'s own, for every configured session."""
    from core.backtest.range_keys import session_windows
    from core.domain.sessions import window_containing_or_before

    cfg = load_config()
    defs = cfg.for_symbol("XAUUSDc").sessions.definitions
    sym, c = _series("xau", 10**9)
    real = c["time"].astype(np.float64) + 299.0
    rng = np.random.default_rng(7)
    sparse = np.cumsum(rng.choice([60.0, 3600.0, 5 * 3600.0, 86400.0, 9 * 86400.0], size=3000)) + real[0]
    for ts in (real, sparse, real[:1], real[:2]):
        for name, definition in defs.items():
            starts, ends = session_windows(name, definition, ts)
            step = 1 if len(ts) < 5000 else 7  # every 7th real bar: ~9k live look-ups per session
            for j in range(0, len(ts), step):
                w = window_containing_or_before(name, definition, float(ts[j]))
                assert (starts[j], ends[j]) == (w.start, w.end), (name, j)
