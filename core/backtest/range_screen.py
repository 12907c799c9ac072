"""Range pre-screen: could any range the analysis might pick carry a trade at this bar?

`core.analysis.pipeline.analyse` passes only if the range it picks (one of its candidates: the dynamic
swing range on the primary timeframe, the session range, the previous day's range within the width
limits) passes `validate_range_integrity` (tested twice per side, not broken, width in limits) AND
its top strategy is viable, which `RangeScalpingScorer._location_problem` allows only for an entry in
the critical zone at the faded edge or within `price_edge_threshold_atr` ATR of it; and the engine
trades a pass only if the live re-entry rule (`check_reentry_allowed`, cooldown and cap per range)
allows that range. So if *no* candidate could satisfy all three, the analysis' result would not be
traded, whatever it is, and the call can be skipped (nothing else reads it). The check is a
relaxation (any candidate, either side, bid/ask/close as the entry, the zone widened to the larger of
its band and the ATR threshold), so it can only err towards analysing.

* Dynamic range (`core.backtest.range_dynamic`): its edges are the extreme confirmed fractal pivots of
  the last `lookback_bars` bars, and a fractal compares a bar with its neighbours only, so the edges are exact rolling maxima
  / minima of the full-series pivots, computed once per run (`tests/test_backtest_prescreen.py`
  compares them with the live detector's). Touch counts use a tolerance from the ATR; where the
  ATR's last-bit rounding could change a count the bar counts as validated.
* Session and previous-day ranges: the live detector's own helpers on the live windows, cheapest
  first (edge finder, width limits, touch counts), then `detect_range` itself only when an entry is
  near an edge; cached on what they depend on (the last closed M15/H1 bar, the session window, the
  UTC day), so they are the analysis' own objects. Those keys, and which bars cannot have either
  candidate at all, are computed for all bars at once by `core.backtest.range_keys`.

* The pick: `core.analysis.pipeline._detect` judges one candidate, from those within an ATR of the last
  close if any ("inside"), validated first, then dynamic > session > previous day. So where the dynamic
  range surely is an inside candidate, one outside is never judged; validated too, it alone is ("owns").
  The judged range must also pass `detect_false_range`'s count of the last hour's closes beyond its edges.

Look-ahead: everything at bar i reads bars closed by its close (and the quote then), as the analysis.
"""
from __future__ import annotations

import math

import numpy as np

from core.analysis.range.bars import Bars
from core.analysis.range.detector import RangeBoundaryDetector, count_touches
from core.analysis.range.lastvalues import atr_last
from core.backtest.prescreen import MARGIN
from core.backtest.range_dynamic import dynamic_possible
from core.backtest.range_keys import BarKeys, Edges, build_bar_keys
from core.config.model import AppConfig
from core.domain.models import NoRange, RangeStructure
from core.domain.sessions import window_containing_or_before
from core.domain.timeframes import Timeframe

_COLUMNS = ("time", "open", "high", "low", "close", "tick_volume", "spread")  # `Bars`' order
_UNBUILT = object()


class LazyRanges:
    """The session and previous-day candidates at a bar, from the live detector, cached on their inputs."""

    def __init__(self, cfg: AppConfig, symbol: str, frames: dict[Timeframe, np.ndarray],
                 atr: np.ndarray, entries: list[np.ndarray]) -> None:
        from core.analysis.pipeline import _session_tf, window_sizes

        self.tcfg = cfg.for_symbol(symbol)
        self.detector = RangeBoundaryDetector(self.tcfg, symbol)
        self.sizes = window_sizes(self.tcfg)
        self.frames = {tf.value: arr for tf, arr in frames.items()}
        self.times = {k: np.ascontiguousarray(v["time"]) for k, v in self.frames.items()}
        # each frame's columns as contiguous float64, once: a window is then slices of these, the very values
        # `Bars.closed_window` copies out per call (the detector only reads its windows)
        self.secs = {k: Timeframe.parse(k).seconds for k in self.frames}
        self.stf = _session_tf(self.tcfg, self.sizes)
        self.cols = {k: [self.frames[k][c].astype(np.float64) for c in _COLUMNS]
                     for k in dict.fromkeys((self.stf, "H1")) if k in self.frames}  # the frames candidates use
        self.atr, self.entries = atr, entries
        # per-bar reads as Python floats through `.item(i)` (a numpy scalar costs more than the test it feeds;
        # a whole-series list cost more than the few thousand bars ever read)
        self._atr = np.ascontiguousarray(atr, dtype=np.float64)
        self._ents = [np.ascontiguousarray(e, dtype=np.float64) for e in entries]
        rd, tc = self.tcfg.range_detection, self.tcfg
        self._edge_thr = tc.entry_filters.price_edge_threshold_atr
        self._zone_frac, self._out_buf = rd.critical_zone_fraction, tc.range_invalidation.outside_buffer_atr
        self._cache: dict[tuple, object] = {}
        self.keys: BarKeys | None = None

    def precompute(self, candles: np.ndarray, tf_sec: int, inside: np.ndarray | None = None) -> None:
        """Per-bar keys, and which bars cannot have each candidate (`core.backtest.range_keys`), for a run's bars."""
        self.keys = build_bar_keys(self.tcfg, candles, tf_sec, self.frames, self.sizes, self.stf, self.atr,
                                   self.entries, inside)

    @classmethod
    def build(cls, cfg: AppConfig, symbol: str, frames: dict[Timeframe, np.ndarray], atr: np.ndarray,
              entries: list[np.ndarray]) -> LazyRanges | None:
        """None unless the feed holds every timeframe the analysis reads ranges from (otherwise the feed
        would build them on demand, and this would have to mirror that too)."""
        from core.analysis.pipeline import window_sizes

        names = {tf.value for tf in frames}
        if not set(window_sizes(cfg.for_symbol(symbol))) <= names:
            return None
        return cls(cfg, symbol, frames, atr, entries)

    def _window(self, tf: str, now: float, end: int | None = None) -> tuple[int, Bars | None]:
        """`Bars.closed_window` of the frame at `now`; `end`: the bars closed by then, when already known."""
        cols = self.cols.get(tf)
        if cols is None:
            return -1, None
        secs = self.secs[tf]
        if end is None:
            end = int(np.searchsorted(self.times[tf], np.int64(math.floor(now - secs)), side="right"))
        s = slice(max(0, end - self.sizes[tf]), end)
        return end, Bars(tf, secs, *(col[s] for col in cols))

    def _key(self, kind: str, now: float, i: int) -> tuple | None:
        """The cache key of a candidate at bar i: what it depends on (None: no session so named)."""
        keys = self.keys
        if keys is not None and keys.nows.item(i) == now:
            if kind == "session":
                if keys.win_start is None:
                    return self._slow_key(kind, now)
                return (kind, keys.end[self.stf].item(i), keys.win_start.item(i), keys.win_end.item(i))
            return (kind, keys.end["H1"].item(i), math.floor(now / 86400.0))
        return self._slow_key(kind, now)

    def _slow_key(self, kind: str, now: float) -> tuple | None:
        rd = self.tcfg.range_detection
        if kind == "session":
            tf = self.stf
            definition = self.tcfg.sessions.definitions.get(rd.session_range)
            if definition is None:
                return None
            win = window_containing_or_before(rd.session_range, definition, now - 1.0)
            extra = (win.start, win.end)
        else:
            tf = "H1"
            extra = (math.floor(now / 86400.0),)  # the detector's "today" (`_previous_day_edges`)
        secs = self.secs[tf]
        end = int(np.searchsorted(self.times[tf], np.int64(math.floor(now - secs)), side="right"))
        return (kind, end, *extra)

    def _prepared(self, kind: str, now: float, i: int) -> list | None:
        """Per cache key: [bars, atr, high, low, built range, zones] of a candidate that passes the cheap half of
        `RangeBoundaryDetector._build` + `validate_range_integrity` (width limits, two touches per side),
        else None. The same helpers `detect_range` calls, on the same window, in the same order."""
        key = self._key(kind, now, i)
        if key is None:
            return None
        hit = self._cache.get(key, _UNBUILT)
        if hit is not _UNBUILT:
            return hit
        rd = self.tcfg.range_detection
        tf = self.stf if kind == "session" else "H1"
        out = None
        keys = self.keys
        _, bars = self._window(tf, now, keys.end[tf].item(i) if keys is not None and keys.nows.item(i) == now else None)
        # edges and width first: they do not need the ATR, and a candidate failing them is None either way
        det = self.detector
        found = det._session_edges(bars, now) if kind == "session" else det._previous_day_edges(bars, now)
        if not isinstance(found, NoRange):
            high, low, _start, first = found
            mid = (high + low) / 2.0
            width_pct = (high - low) / mid * 100.0 if mid else 0.0
            if det._width_failure(kind, high, low, width_pct) is None:
                a = atr_last(bars.high, bars.low, bars.close, self.tcfg.effective_atr.atr_period)
                if a > 0:
                    top, bottom = count_touches(bars.high[first:], bars.low[first:], high, low, rd.touch_tolerance_atr * a)
                    need = rd.min_touches_per_side
                    if top >= need and bottom >= need:
                        out = [bars, a, high, low, _UNBUILT, _UNBUILT]
        self._cache[key] = out
        return out

    def _near(self, kind: str, now: float, i: int, m5: float) -> list | None:
        """The prepared candidate (see `_prepared`) if some entry is near one of its edges at bar i."""
        hit = self._prepared(kind, now, i)
        if hit is None:
            return None
        _bars, a, H, L, _built, _gaps = hit
        slack = MARGIN * (abs(H) + abs(L) + a + m5)
        thr = self._edge_thr * m5
        inner = max((H - L) * self._zone_frac, thr) + slack
        outer = max(self._out_buf * a, thr) + slack
        if not any(H - inner <= x <= H + outer or L - outer <= x <= L + inner for x in [e.item(i) for e in self._ents]):
            return None
        return hit

    def _built(self, hit: list, kind: str, now: float) -> RangeStructure | None:
        """The live detector's range for a prepared candidate, if it validates (built once per key)."""
        if hit[4] is _UNBUILT:
            bars, a = hit[0], hit[1]
            r = self.detector.detect_range(bars, kind, atr=a, as_of=now, apply_width_limits=kind == "session")
            ok = isinstance(r, RangeStructure) and self.detector.validate_range_integrity(r)[0]
            hit[4] = r if ok else None
        return hit[4]

    def _candidate(self, kind: str, now: float, i: int, m5: float) -> RangeStructure | None:
        """The candidate if it could be the tradeable pick at bar i (valid, some entry near an edge)."""
        hit = self._near(kind, now, i, m5)
        return None if hit is None else self._built(hit, kind, now)

    def could_pass(self, i: int, now: float, tradeable=None, admits=None) -> bool:
        """True if a candidate validates, has an entry in its critical zones (or within the ATR threshold
        of an edge) and is allowed by `tradeable`. The range itself is built last, once the cheap tests
        pass: its edges are the prepared ones and its zones are `calculate_critical_gaps` of those edges
        and the window's ATR (as `RangeBoundaryDetector._build` makes them), and the re-entry rule reads
        only the edges, so the order changes the cost, not the answer; hence it is asked first where the
        per-bar keys know the edges (`BarKeys.session_edges`, the detector's). `admits(high, low)`: False when a
        candidate with those edges surely is not the analysis' pick or surely fails its false-range test."""
        a = self._atr.item(i)
        if not (a > 0) or not math.isfinite(a):
            return True
        thr = self._edge_thr * a
        keys = self.keys
        if keys is not None and keys.nows.item(i) != now:
            keys = None  # the per-bar inputs hold at the bar's close only
        for kind in ("session", "previous_day"):
            if keys is not None:
                possible = keys.session_possible if kind == "session" else keys.day_possible
                if possible is not None and not possible.item(i):
                    continue  # `_candidate` would return None (core.backtest.range_keys)
                # the re-entry rule first when the edges are known: it reads nothing else, and most candidates
                # near an edge are the range just traded, whose detector work is then not needed
                edges = (keys.session_edges if kind == "session" else keys.day_edges).get(i)
                if edges is not None and tradeable is not None and not tradeable(edges):
                    continue
            hit = self._near(kind, now, i, a)
            if hit is None or hit[4] is None:  # nothing near, or built before and invalid
                continue
            H, L, z = hit[2], hit[3], hit[5]
            if z is _UNBUILT:
                z = hit[5] = self.detector.calculate_critical_gaps(H, L, hit[1])  # the range's own ATR
            slack = MARGIN * (abs(H) + abs(L) + a)
            if not any(z.upper_zone_start - slack <= x <= z.upper_zone_end + slack or abs(x - H) <= thr + slack
                       or z.lower_zone_start - slack <= x <= z.lower_zone_end + slack or abs(x - L) <= thr + slack
                       for x in [e.item(i) for e in self._ents]):
                continue
            if admits is not None and not admits(H, L):
                continue
            if tradeable is not None and not tradeable(Edges(H, L)):
                continue
            if self._built(hit, kind, now) is not None:
                return True
        return False


class RangeScreen:
    """Per bar: False when no candidate range can carry a trade (see the module docstring).

    `tradeable(range)` is the engine's re-entry rule (`RangeScalpingExitManager.check_reentry_allowed`
    on the live exit manager, now): a pass on a range it refuses is not traded, so a bar whose every
    possible range is refused can skip the analysis too (nothing else reads the result)."""

    def __init__(self, no_dynamic: np.ndarray, edges_h: np.ndarray, edges_l: np.ndarray, lazy: LazyRanges,
                 pick: dict | None = None, close: np.ndarray | None = None) -> None:
        self.no_dynamic = no_dynamic
        self.edges_h, self.edges_l = edges_h, edges_l
        self.lazy = lazy
        self.lazy_checks = 0
        pick, n, tcfg = pick or {}, len(no_dynamic), lazy.tcfg  # the analysis' pick: see `dynamic_possible`
        self.inside = pick.get("inside", np.zeros(n, dtype=bool))
        self.owns = pick.get("owns", np.zeros(n, dtype=bool))
        self.close = close
        self._hour = max(1, int(3600 // Timeframe.parse(tcfg.range_detection.timeframe).seconds))
        self._most, self._buf = tcfg.false_range.max_closes_beyond_edges, tcfg.range_invalidation.outside_buffer_atr
        # bars where `could_pass` is False whatever `tradeable` says: no dynamic candidate, and neither
        # lazy kind possible (`core.backtest.range_keys`); valid when asked at the bar's close
        keys = lazy.keys
        ruled = np.zeros(len(no_dynamic), dtype=bool)
        if keys is not None and keys.session_possible is not None and keys.day_possible is not None:
            a = np.asarray(lazy.atr, dtype=np.float64)
            with np.errstate(invalid="ignore"):
                ruled = (no_dynamic & np.isfinite(a) & (a > 0) & ~np.asarray(keys.session_possible)
                         & ~np.asarray(keys.day_possible))
        self.ruled_out: np.ndarray = ruled | (no_dynamic & self.owns)  # owns: the pick cannot pass

    def could_pass(self, i: int, now: float, tradeable=None) -> bool:
        if not self.no_dynamic.item(i):
            h, lo = self.edges_h.item(i), self.edges_l.item(i)
            if tradeable is None or not (math.isfinite(h) and math.isfinite(lo)) or tradeable(Edges(h, lo)):
                return True
        if self.owns.item(i):
            return False  # the dynamic range is the pick: another candidate is never the one judged
        self.lazy_checks += 1
        # `admits` is built only if asked: most candidates are refused by the re-entry rule before it
        admits = None if self.close is None else lambda high, low: self._admits(i)(high, low)
        return self.lazy.could_pass(i, now, tradeable, admits)

    def _admits(self, i: int):
        """`LazyRanges.could_pass`'s `admits` at bar i: a lazy candidate (high, low) can be the pick only if it
        is in the pool (inside, when the dynamic range is), and passes `detect_false_range`'s closes-beyond
        test (the last hour's closes against its edges ± the buffer of the primary ATR). Sure tests only."""
        x, a, inside = self.close.item(i), self.lazy._atr.item(i), self.inside.item(i)
        closes, buf = self.close[max(0, i - self._hour + 1):i + 1].tolist(), self._buf * a

        def admits(high: float, low: float) -> bool:
            slack = MARGIN * (abs(high) + abs(low) + a)
            if inside and (x < low - a - slack or x > high + a + slack):
                return False
            out = sum(1 for c in closes if c > high + buf + slack or c < low - buf - slack)
            return not (out >= self._most and out > 0)

        return admits


def build_range_screen(cfg: AppConfig, symbol: str, candles: np.ndarray, frames: dict[Timeframe, np.ndarray],
                       atr: np.ndarray, entries: list[np.ndarray]) -> RangeScreen | None:
    """`frames`: the feed's bars per timeframe (the arrays the analysis' windows are cut from)."""
    lazy = LazyRanges.build(cfg, symbol, frames, atr, entries)
    if lazy is None:
        return None
    # the screen runs only on the analysis' own primary timeframe (`core.backtest.prescreen.build_screen`)
    possible, edges_h, edges_l = dynamic_possible(cfg, symbol, candles, atr, entries, pick := {})
    lazy.precompute(candles, Timeframe.parse(cfg.for_symbol(symbol).range_detection.timeframe).seconds,
                    pick.get("inside"))
    return RangeScreen(~possible, edges_h, edges_l, lazy, pick, candles["close"].astype(np.float64))
