"""The paper broker's view of the market: candles that exist *up to the replay clock*, nothing later.

Everything that could leak the future is concentrated here, so the no-look-ahead rule is checked in
one place: a bar is visible once its close time (`time + timeframe`) is at or before the clock; the
bar covering the clock is "forming" and only its open is known (that is the live price); bars of a
timeframe the data does not have are resampled from closed bars of the smallest timeframe it has,
dropping the still-incomplete last bucket.
"""
from __future__ import annotations

import math
import threading
from bisect import bisect_right
from collections.abc import Mapping
from typing import Protocol

import numpy as np

from core.data.candles import CANDLE_DTYPE, as_candles
from core.data.resample import resample
from core.domain.clock import Clock, SystemClock
from core.domain.timeframes import Timeframe


class CandleSource(Protocol):
    """Anything that returns a whole candle history per symbol/timeframe (e.g. core.data MarketData)."""

    def candles(self, symbol: str, timeframe: Timeframe) -> np.ndarray: ...


class AcceleratedClock:
    """Maps the wall clock onto the data: replay = start + (wall - wall_at_start) * speed.

    speed 1 is "real time on old data"; speed 60 replays an hour a minute. Step-by-step replays use a
    `core.domain.clock.FixedClock` instead, moved by `PaperBroker.step()` / `advance_to()`.
    """

    def __init__(self, start: float, speed: float = 1.0, wall: Clock | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._wall = wall or SystemClock()
        self._start = float(start)
        self._wall0 = self._wall.now()
        self.speed = float(speed)

    def now(self) -> float:
        return self._start + (self._wall.now() - self._wall0) * self.speed

    def set(self, t: float) -> None:
        """Rebase the replay at `t` (a restarted paper account resumes where it stopped)."""
        self._start = float(t)
        self._wall0 = self._wall.now()


class ReplayFeed:
    """Per-symbol candle histories, loaded lazily, queried only through the replay time."""

    def __init__(
        self,
        data: Mapping[str, Mapping[Timeframe | str, np.ndarray]] | None = None,
        *,
        source: CandleSource | None = None,
        timeframes: Mapping[str, list[Timeframe | str]] | None = None,
    ) -> None:
        self._arrays: dict[tuple[str, Timeframe], np.ndarray] = {}
        # contiguous copies of the time columns: searchsorted on a strided field view copies it each call
        self._times: dict[tuple[str, Timeframe], np.ndarray] = {}
        self._columns: dict[tuple[str, str], np.ndarray] = {}
        self._views: dict[tuple[str, str], memoryview] = {}
        self._bar_views: dict[str, tuple[memoryview, memoryview, memoryview, memoryview, memoryview]] = {}
        self._searchers: dict[tuple[str, Timeframe], _Times] = {}
        # (bars, the same bytes as one opaque field per row) per (symbol, timeframe): see `_rows`
        self._raw: dict[tuple[str, Timeframe], tuple[np.ndarray, np.ndarray | None]] = {}
        # (base times searcher, base bar seconds) per symbol: fixed once loaded, read on every quote and step
        self._base: dict[str, tuple[_Times, int]] = {}
        self._available: dict[str, list[Timeframe]] = {}
        self._source = source
        self._lock = threading.Lock()
        for sym, by_tf in (data or {}).items():
            tfs = []
            for tf, arr in by_tf.items():
                tf = Timeframe.parse(tf)
                self._arrays[(sym, tf)] = _sorted(as_candles(arr))
                tfs.append(tf)
            self._available[sym] = sorted(tfs, key=lambda t: t.seconds)
        for sym, tfs in (timeframes or {}).items():
            if sym not in self._available:
                self._available[sym] = sorted((Timeframe.parse(t) for t in tfs), key=lambda t: t.seconds)
        if source is not None and timeframes is None and data is None:
            raise ValueError("a CandleSource needs the timeframes each symbol has")

    def symbols(self) -> list[str]:
        return list(self._available)

    def has(self, symbol: str) -> bool:
        return bool(self._available.get(symbol))

    def base_timeframe(self, symbol: str) -> Timeframe:
        """Fills and SL/TP run on the finest bars available: the closest thing to ticks we have."""
        return self._available[symbol][0]

    def bars(self, symbol: str, timeframe: Timeframe) -> np.ndarray:
        key = (symbol, timeframe)
        with self._lock:
            arr = self._arrays.get(key)
            if arr is None:
                if self._source is None or timeframe not in self._available.get(symbol, []):
                    raise KeyError(f"no {timeframe.value} data for {symbol}")
                arr = self._arrays[key] = _sorted(as_candles(self._source.candles(symbol, timeframe)))
            return arr

    def base_bars(self, symbol: str) -> np.ndarray:
        return self.bars(symbol, self.base_timeframe(symbol))

    def times(self, symbol: str, timeframe: Timeframe) -> np.ndarray:
        key = (symbol, timeframe)
        t = self._times.get(key)
        if t is None:
            t = self._times[key] = np.ascontiguousarray(self.bars(symbol, timeframe)["time"])
        return t

    def base_times(self, symbol: str) -> np.ndarray:
        return self.times(symbol, self.base_timeframe(symbol))

    def base_column(self, symbol: str, name: str) -> np.ndarray:
        """One field of the base bars as a contiguous array: a quote reads two values of one bar, and a
        field of a whole-row read (a numpy record) costs several times an element of a column."""
        key = (symbol, name)
        col = self._columns.get(key)
        if col is None:
            col = self._columns[key] = np.ascontiguousarray(self.base_bars(symbol)[name])
        return col

    def base_view(self, symbol: str, name: str) -> memoryview:
        """`base_column` as a memoryview: an element read gives the Python int/float `int()`/`float()` of the
        numpy element would, without making a numpy scalar (the quote and the stop scan read a few per call)."""
        key = (symbol, name)
        view = self._views.get(key)
        if view is None:
            view = self._views[key] = memoryview(self.base_column(symbol, name))
        return view

    def bar_views(self, symbol: str) -> tuple[memoryview, memoryview, memoryview, memoryview, memoryview]:
        """(time, open, high, low, spread) `base_view`s: what the stop scan reads, one look-up per step."""
        hit = self._bar_views.get(symbol)
        if hit is None:
            v = self.base_view
            hit = self._bar_views[symbol] = (v(symbol, "time"), v(symbol, "open"), v(symbol, "high"),
                                             v(symbol, "low"), v(symbol, "spread"))
        return hit

    def _searcher(self, symbol: str, timeframe: Timeframe) -> _Times:
        key = (symbol, timeframe)
        hit = self._searchers.get(key)
        if hit is None:
            hit = self._searchers[key] = _Times(self.times(symbol, timeframe))
        return hit

    def closed(self, symbol: str, timeframe: Timeframe, now: float, count: int) -> np.ndarray:
        """The last `count` bars closed at `now`, oldest first (resampled when the data lacks `timeframe`)."""
        if count <= 0:
            return np.zeros(0, dtype=CANDLE_DTYPE)
        sec = timeframe.seconds
        key = (symbol, timeframe)
        hit = self._raw.get(key)  # loaded bars never change: looked up once, not under the lock every call
        if hit is None and timeframe in self._available.get(symbol, []):
            arr = self.bars(symbol, timeframe)
            hit = self._raw[key] = (arr, _opaque(arr))
        if hit is not None:
            end = self._searcher(symbol, timeframe).right(now - sec)
            return _rows(hit[0], max(0, end - count), end, hit[1])
        base_tf = self.base_timeframe(symbol)
        if sec < base_tf.seconds or sec % base_tf.seconds:
            raise KeyError(f"cannot build {timeframe.value} bars for {symbol} from {base_tf.value} data")
        base = self.bars(symbol, base_tf)
        base_t = self.times(symbol, base_tf)
        end = self._searcher(symbol, base_tf).right(now - base_tf.seconds)
        span = (count + 2) * sec
        while True:  # widen the window until it holds `count` buckets (weekend gaps eat some)
            edge = ((now - span) // sec) * sec  # a bucket boundary, so the first bucket is whole
            start = _left(base_t, edge)
            out = resample(base[start:end], timeframe, source_seconds=base_tf.seconds)
            out = out[out["time"] + sec <= now]
            if len(out) >= count or start == 0:
                return out[-count:].copy()
            span *= 2

    def _base_times(self, symbol: str) -> tuple[_Times, int]:
        hit = self._base.get(symbol)
        if hit is None:
            tf = self.base_timeframe(symbol)
            hit = self._base[symbol] = (self._searcher(symbol, tf), tf.seconds)
        return hit

    def covering_index(self, symbol: str, now: float) -> int | None:
        """Index of the base bar whose period contains `now` (the forming bar), or None in a gap."""
        t, sec = self._base_times(symbol)
        i = t.right(now) - 1
        if i < 0 or t.view[i] + sec <= now:
            return None
        return i

    def last_closed_index(self, symbol: str, now: float) -> int | None:
        t, sec = self._base_times(symbol)
        i = t.right(now - sec) - 1
        return i if i >= 0 else None

    def closed_span(self, symbol: str, after: float, until: float) -> tuple[int, int]:
        """Index range [lo, hi) of the base bars whose close time falls in (after, until]."""
        t, sec = self._base_times(symbol)
        return t.right(after - sec), t.right(until - sec)

    def next_open_after(self, now: float) -> float | None:
        """The next base-bar open strictly after `now`, over every symbol: where step() goes."""
        best: float | None = None
        for sym in self.symbols():
            times = self._base_times(sym)[0]
            i = times.right(now)
            if i < times.n:
                t = float(times.view[i])
                best = t if best is None else min(best, t)
        return best


class _Times:
    """A sorted bar-time column searched from where its previous search ended.

    The replay clock moves forward a bar at a time, so the answer is almost always the previous one or
    its neighbour: two element reads instead of a binary search over the whole history, whose numpy call
    and cache misses cost several microseconds per call once the rest of a replay step has run. Any hint
    gives the right answer (it only says where to look first), so threads sharing it need no lock.
    """

    __slots__ = ("arr", "view", "n", "hint")

    def __init__(self, arr: np.ndarray) -> None:
        self.arr = arr  # contiguous int64 (ReplayFeed.times)
        self.view = memoryview(arr)  # an element read is a plain int
        self.n = len(arr)
        self.hint = 0

    def right(self, t: float) -> int:
        """Bars with time <= t, as `int(arr.searchsorted(math.floor(t), "right"))` counts them."""
        k = math.floor(t)  # an int key: exact against the int times (and the same errors for nan/inf)
        v, h = self.view, self.hint
        if h < self.n and v[h] <= k:  # the answer is past the hint
            h += 1
            if h < self.n and v[h] <= k:
                h = bisect_right(v, k, h + 1, self.n)
        elif h > 0 and v[h - 1] > k:  # before it
            h -= 1
            if h > 0 and v[h - 1] > k:
                h = bisect_right(v, k, 0, h - 1)
        self.hint = h
        return h


def _opaque(arr: np.ndarray) -> np.ndarray | None:
    """`arr`'s rows as one opaque (void) field each, or None where a byte copy would not be `arr`'s copy."""
    if not arr.flags.c_contiguous or arr.dtype.hasobject or arr.ndim != 1 or arr.dtype.fields is None:
        return None
    return arr.view(np.dtype((np.void, arr.dtype.itemsize)))


def _rows(arr: np.ndarray, a: int, b: int, opaque: np.ndarray | None = None) -> np.ndarray:
    """`arr[a:b].copy()` (a <= b): the same owned, writeable, contiguous array, copied as bytes, which numpy
    does in a third of the time of its field-by-field copy of a structured array (the monitor's candles
    each cycle). `opaque`: `_opaque(arr)` when the caller keeps it (it is not free to make). The copy of
    the opaque rows is one memcpy, and re-labelling its dtype keeps the new buffer owned (a byte view of
    a fresh structured array went through numpy's Python-level view check on every call)."""
    if opaque is None:
        opaque = _opaque(arr)
        if opaque is None:
            return arr[a:b].copy()
    out = opaque[a:b].copy()
    out.dtype = arr.dtype
    return out


def _left(times: np.ndarray, t: float) -> int:
    """Bars with time < t. The key is an int: a float key makes numpy convert the whole int64 array, and the
    array's own method with a plain int skips the dispatch and scalar boxing of `np.searchsorted`."""
    return int(times.searchsorted(math.ceil(t), "left"))


def _sorted(arr: np.ndarray) -> np.ndarray:
    if len(arr) > 1 and np.any(np.diff(arr["time"]) <= 0):
        arr = np.sort(arr, order="time")
        keep = np.r_[True, np.diff(arr["time"]) > 0]
        arr = arr[keep]
    return arr
