"""The range screen's per-bar candidate edges (`core.backtest.range_keys.BarKeys.session_edges` / `day_edges`).

`LazyRanges.could_pass` asks the re-entry rule about those edges before running the live detector, so
they must be the detector's own wherever the candidate is possible, and the answer must be the one the
detector-first order gives, whatever the re-entry rule refuses.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from core.backtest.live import LiveParts
from core.backtest.prescreen import build_screen
from core.backtest.range_screen import build_range_screen
from core.config.loading import load_config
from core.config.paths import market_data_dir
from core.data.loaders import load_candles
from core.data.resample import resample
from core.domain.models import NoRange
from core.domain.timeframes import Timeframe

SERIES = {
    "xau": ("XAUUSDc", "budimanlai__forex-tick/data/XAUUSD_M5.csv", 2, False, 0),
    "btc": ("BTCUSDc", "mahmer2011__trading_bot/data/BTCUSD_M5.csv", 3, False, 6000),
    "btc1m": ("BTCUSDc", "nautechsystems__nautilus_trader/tests/test_data/btc-perp-20211231-20220201_1m.csv", 0,
              True, 0),
}


def _screen(key: str, n: int):
    sym, rel, tz, m1, offset = SERIES[key]
    c = load_candles(market_data_dir() / rel, tz_offset_hours=tz)
    if m1:
        c = resample(c, "M5", drop_incomplete=True)
    c = c[offset:offset + n].copy()
    cfg = load_config()
    screen = build_screen(cfg, sym, c, Timeframe.M5)
    parts = LiveParts(cfg, sym, c, Timeframe.M5)
    try:
        frames = parts.frames()
    finally:
        parts.shutdown()
    return c, lambda: build_range_screen(cfg, sym, c, frames, screen.atr, screen.entries)


@pytest.mark.parametrize("key", list(SERIES))
def test_candidate_edges_are_the_live_edge_finders_wherever_the_candidate_is_possible(key):
    c, build = _screen(key, 8000)
    lazy = build().lazy
    keys, det = lazy.keys, lazy.detector
    checked = 0
    for kind, possible, edges in (("session", keys.session_possible, keys.session_edges),
                                  ("previous_day", keys.day_possible, keys.day_edges)):
        seen: dict[tuple, tuple | None] = {}
        for i in range(len(c) - 1):
            if not possible[i]:
                assert i not in edges, (kind, i)
                continue
            now = keys.nows[i]
            k = lazy._key(kind, now, i)
            if k not in seen:
                _, bars = lazy._window(lazy.stf if kind == "session" else "H1", now)  # the slow window search
                found = det._session_edges(bars, now) if kind == "session" else det._previous_day_edges(bars, now)
                seen[k] = None if isinstance(found, NoRange) else (found[0], found[1])
            live = seen[k]
            if live is not None:
                e = edges[i]
                assert (e.range_high, e.range_low) == live, (kind, i)
                checked += 1
    assert checked > 300, checked


@pytest.mark.parametrize("key", list(SERIES))
def test_could_pass_with_the_edges_first_equals_the_detector_first_order(key):
    """Both orders on every bar, with a re-entry rule refusing about two ranges in three (and none): the same
    answers, and the edges-first order runs the detector on fewer keys."""
    c, build = _screen(key, 6000)
    fast = build()
    slow = build()
    slow.lazy.keys = copy.copy(slow.lazy.keys)
    slow.lazy.keys.session_edges, slow.lazy.keys.day_edges = {}, {}  # no edges: the detector-first order

    def refusing(rng) -> bool:
        return hash((rng.range_high, rng.range_low)) % 3 == 0

    for tradeable in (refusing, lambda _rng: True):
        answers = {True: 0, False: 0}
        for i in range(len(c) - 1):
            now = float(c["time"][i]) + 300
            got = fast.could_pass(i, now, tradeable)
            assert got == slow.could_pass(i, now, tradeable), i
            answers[got] += 1
        assert min(answers.values()) > 50, answers
        if tradeable is refusing:
            assert len(fast.lazy._cache) < len(slow.lazy._cache)  # fewer keys went through the detector
    assert not any(math.isnan(e.range_high) for e in fast.lazy.keys.session_edges.values())
    assert np.sum(fast.lazy.keys.session_possible) >= len(fast.lazy.keys.session_edges) > 100
