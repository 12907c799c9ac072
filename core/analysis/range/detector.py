"""RangeBoundaryDetector: where is the box, how good is it, and is it still intact?

Three kinds of range are built because traders use all three: the dynamic swing range (the highest
confirmed swing high and lowest swing low of the lookback), the session range (e.g. the Asian
session's high/low) and the previous day's high/low. Each is scored by how often price tested its
edges: a box that was never tested twice per side is only a guess, so it comes back with
`validated=False` rather than being dropped. Structural failures (too few bars, too narrow to pay
the spread, too wide to be a range, no swings) come back as `NoRange` with a sentence a trader
understands, never as an exception.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict

import numpy as np

from core.analysis.range.bars import Bars
from core.analysis.range.lastvalues import width_regime
from core.config.model import TradingConfig
from core.domain.models import CriticalGapZones, NoRange, RangeStructure, TouchCount
from core.domain.sessions import window_containing_or_before

_NESTED: OrderedDict[tuple, tuple[TradingConfig, RangeStructure | NoRange]] = OrderedDict()
_MEMO_LOCK = threading.Lock()
_EXPANSION: OrderedDict[tuple, tuple[TradingConfig, tuple[str, float]]] = OrderedDict()
_HOUR = 3600.0
_COUNT = np.count_nonzero
_MAX = np.maximum.reduce  # what ndarray.max / .min reduce with, without their Python wrapper
_MIN = np.minimum.reduce
_DAY = 86400.0


def _day_start(t: float) -> float:
    """np.floor(t / 86400) * 86400 in Python floats: the same float (a zero keeps its sign and a non-finite
    value passes through, as in numpy)."""
    q = t / _DAY
    return float(math.floor(q)) * _DAY if math.isfinite(q) and q != 0 else q * _DAY


def _span_text(n: int, seconds: int) -> str:
    hours = n * seconds / _HOUR
    if hours >= 48:
        return f"{hours / 24:.0f} days"
    return f"{hours:.0f} hours" if hours >= 2 else f"{hours * 60:.0f} minutes"


def _pivots(x: np.ndarray, n: int, higher: bool) -> np.ndarray:
    """The confirmed fractal pivots of `x` (the non-NaN values of `swing_highs` / `swing_lows`), in order.

    The range needs only their extremes and how many are finite, not the NaN-padded series those build
    (about half the cost of a swing range). A centre beats all 2n neighbours exactly when it beats their
    maximum (minimum): one comparison after n-1 pairwise extremes instead of 2n comparisons and their ANDs,
    and a NaN neighbour propagates through np.maximum / np.minimum so it still vetoes, as its own false
    comparison did. A NaN is never a pivot (it compares false), so the values here carry no NaN."""
    n = int(n)
    if n < 1:
        raise ValueError(f"fractal half-width n must be >= 1 (got {n})")
    length = len(x)
    if length < 2 * n + 1:
        return x[:0]
    centre = x[n:length - n]
    ext = np.maximum if higher else np.minimum
    nb = ext(x[n - 1:length - n - 1], x[n + 1:length - n + 1])
    for k in range(2, n + 1):
        ext(nb, x[n - k:length - n - k], out=nb)
        ext(nb, x[n + k:length - n + k], out=nb)
    return centre[centre > nb] if higher else centre[centre < nb]


def count_touches(high: np.ndarray, low: np.ndarray, top: float, bottom: float, tol: float) -> tuple[int, int]:
    """Separate tests of each edge: consecutive bars near an edge count once (one visit, one test).

    A visit starts where a bar is near and the one before it was not: on booleans that is `now > before`.
    Python ints, not numpy's count: the models and comparisons downstream take them without a conversion."""
    near_top = high >= top - tol
    near_bot = low <= bottom + tol
    top_n = int(near_top[0]) + int(_COUNT(near_top[1:] > near_top[:-1])) if len(high) else 0
    bot_n = int(near_bot[0]) + int(_COUNT(near_bot[1:] > near_bot[:-1])) if len(low) else 0
    return top_n, bot_n


class RangeBoundaryDetector:
    def __init__(self, cfg: TradingConfig, symbol: str):
        self.cfg = cfg
        self.symbol = symbol
        self.rd = cfg.range_detection

    # -- edges -------------------------------------------------------------------------------------
    def calculate_critical_gaps(self, range_high: float, range_low: float, atr: float) -> CriticalGapZones:
        """Entry bands at each edge: the outer `critical_zone_fraction` of the box, plus a small
        overshoot beyond the edge (stop-runs poke through before reversing)."""
        band = (range_high - range_low) * self.rd.critical_zone_fraction
        over = self.cfg.range_invalidation.outside_buffer_atr * atr
        return CriticalGapZones(
            upper_zone_start=range_high - band,
            upper_zone_end=range_high + over,
            lower_zone_start=range_low - over,
            lower_zone_end=range_low + band,
        )

    # -- range kinds ------------------------------------------------------------------------------
    def detect_range(
        self, bars: Bars, range_type: str = "dynamic", *, atr: float, apply_width_limits: bool = True,
        as_of: float | None = None,
    ) -> RangeStructure | NoRange:
        """Build one kind of range from `bars` (already cut to closed bars at `as_of`)."""
        found = self.detect_candidate(bars, range_type, atr=atr, apply_width_limits=apply_width_limits, as_of=as_of)
        return found if isinstance(found, NoRange) else found.build()

    def detect_candidate(
        self, bars: Bars, range_type: str = "dynamic", *, atr: float, apply_width_limits: bool = True,
        as_of: float | None = None,
    ) -> RangeCandidate | NoRange:
        """`detect_range` up to what a choice between ranges reads (edges, width, touches); the rest on `build()`."""
        as_of = bars.last_close_time if as_of is None else as_of
        if range_type == "dynamic":
            found = self._dynamic_edges(bars)
        elif range_type == "session":
            found = self._session_edges(bars, as_of)
        elif range_type == "previous_day":
            found = self._previous_day_edges(bars, as_of)
        else:
            raise ValueError(f"unknown range type {range_type!r}")
        if isinstance(found, NoRange):
            return found
        return self._measure(range_type, bars, *found, atr, apply_width_limits)

    def _too_few(self, bars: Bars, need: int, what: str) -> NoRange:
        if len(bars) == 0:  # "Only 0 candles" reads like a bug; this is a data gap (or a feed outage)
            text = (f"There are no closed {bars.timeframe} candles at this time, so there is no {what} to judge "
                    f"(the market data does not cover this date, or the feed is down).")
        else:
            text = (f"Only {len(bars)} closed {bars.timeframe} candles are available for the {what}; "
                    f"I need at least {need} to judge a range.")
        return NoRange(
            reason="too_few_candles",
            message=text,
            details={"have": len(bars), "need": need, "timeframe": bars.timeframe},
        )

    def _dynamic_edges(self, bars: Bars):
        need = self.rd.min_candles
        if len(bars) < need:
            return self._too_few(bars, need, "swing range")
        i = bars.tail_start(self.rd.lookback_bars)  # the lookback's two columns are sliced, not all eight
        n = self.rd.swing_fractal_bars
        sh = _pivots(bars.high[i:], n, higher=True)
        sl = _pivots(bars.low[i:], n, higher=False)
        # the extremes say whether any pivot is finite: a swing high can be +inf but never -inf (nothing is
        # below it), so a finite max means every one is finite; likewise a finite min of the swing lows
        high = float(_MAX(sh)) if len(sh) else math.nan
        low = float(_MIN(sl)) if len(sl) else math.nan
        has_h = math.isfinite(high) or (len(sh) > 0 and bool(np.isfinite(sh).any()))
        has_l = math.isfinite(low) or (len(sl) > 0 and bool(np.isfinite(sl).any()))
        if not (has_h and has_l):
            missing = "swing high" if not has_h else "swing low"
            return NoRange(
                reason="no_swings",
                message=f"No {missing} has formed in the last {_span_text(len(bars) - i, bars.seconds)}: price is moving one way, "
                "so there are no edges to trade against.",
                details={"swing_highs": int(np.isfinite(sh).sum()), "swing_lows": int(np.isfinite(sl).sum())},
            )
        if high <= low:
            return NoRange(
                reason="no_swings",
                message="The swing highs sit below the swing lows: price is gapping, not ranging.",
                details={"swing_high": high, "swing_low": low},
            )
        return high, low, float(bars.time[i]), i

    def _session_edges(self, bars: Bars, as_of: float):
        name = self.rd.session_range
        definition = self.cfg.sessions.definitions.get(name)
        if definition is None:
            return NoRange(reason="no_session", message=f"The session '{name}' is not defined in the config.")
        win = window_containing_or_before(name, definition, as_of - 1.0)
        inside = bars.span(win.start, min(win.end, as_of))  # positions only: its count and extremes are read
        have = max(0, inside.stop - inside.start)
        need = max(3, int(_HOUR // bars.seconds))
        if have < need:
            label = name.replace("_", " ").title()
            return NoRange(
                reason="too_few_candles",
                message=f"The {label} session has only {have} closed {bars.timeframe} candles "
                f"so far; I need {need} to know its high and low.",
                details={"have": have, "need": need, "session_start": win.start},
            )
        return float(_MAX(bars.high[inside])), float(_MIN(bars.low[inside])), win.start, bars.first_since(win.start)

    def _previous_day_edges(self, bars: Bars, as_of: float):
        if len(bars) == 0:
            return self._too_few(bars, 1, "previous day's high/low")
        # at 00:00 exactly the day that just closed is complete: it is the previous day, not "today"
        today = _day_start(as_of)
        # positions in the bars before today (`between` on them, without building each window)
        t = bars.time[:int(bars.time.searchsorted(today, side="left"))]
        if len(t) == 0:
            return NoRange(
                reason="too_few_candles",
                message="There is no complete previous trading day in the data yet.",
                details={"timeframe": bars.timeframe},
            )
        # the last day with a real session: skips weekends and the Sunday-evening stub of FX/metal feeds
        need = max(2, int(4 * _HOUR // bars.seconds))
        day0 = _day_start(float(t[-1]))
        for _ in range(5):
            i = int(t.searchsorted(day0, side="left"))
            prev = slice(i, int(t.searchsorted(day0 + _DAY, side="left")))
            have = max(0, prev.stop - i)
            if have >= need or i == 0:  # enough bars, or no earlier bar to step back to
                break
            day0 = _day_start(float(t[i - 1]))
        if have < need:
            return NoRange(
                reason="too_few_candles",
                message=f"The previous trading day has only {have} {bars.timeframe} candles; "
                "its high and low are not meaningful.",
                details={"have": have, "need": need},
            )
        return float(_MAX(bars.high[prev])), float(_MIN(bars.low[prev])), float(day0), bars.first_since(day0)

    # -- assembly ---------------------------------------------------------------------------------
    def check_width(self, rng: RangeStructure) -> NoRange | None:
        """The per-symbol width limits, as a NoRange when the range breaks them."""
        return self._width_failure(rng.range_type, rng.range_high, rng.range_low, rng.range_width_pct)

    def _width_failure(self, range_type, high, low, width_pct) -> NoRange | None:
        lim = self.cfg.range_width
        if lim.min_pct <= width_pct <= lim.max_pct:  # the common case: no details to build (round is slow)
            return None
        details = {"range_type": range_type, "high": high, "low": low, "width_pct": round(width_pct, 4)}
        if width_pct < lim.min_pct:
            return NoRange(
                reason="too_narrow",
                message=f"The {_label(range_type)} is only {width_pct:.2f}% wide (minimum {lim.min_pct:g}% for "
                f"{self.symbol}): too tight to pay the spread and still fit a stop.",
                details=details,
            )
        if width_pct > lim.max_pct:
            return NoRange(
                reason="too_wide",
                message=f"The {_label(range_type)} is {width_pct:.2f}% wide (maximum {lim.max_pct:g}% for "
                f"{self.symbol}): that is a trending or volatile market, not a range.",
                details=details,
            )
        return None

    def _measure(self, range_type, bars, high, low, start, first: int, atr, apply_width_limits):
        mid = (high + low) / 2.0
        width = high - low
        width_pct = width / mid * 100.0 if mid else 0.0
        if apply_width_limits:
            failure = self._width_failure(range_type, high, low, width_pct)
            if failure is not None:
                return failure
        tol = self.rd.touch_tolerance_atr * atr
        top, bottom = count_touches(bars.high[first:], bars.low[first:], high, low, tol)
        return RangeCandidate(self, range_type, bars, high, low, start, atr, mid, width, width_pct, top, bottom)

    # -- state ------------------------------------------------------------------------------------
    def expansion_state(self, bars: Bars) -> tuple[str, float]:
        """Bollinger width now versus its average over the lookback: expanding boxes tend to break."""
        # memoised on the closes themselves: higher-timeframe windows repeat for many M5 calls
        key = (id(self.cfg), bars.timeframe, hash(bars.close.tobytes()))
        hit = _EXPANSION.get(key)
        if hit is not None and hit[0] is self.cfg:
            return hit[1]
        ea = self.cfg.effective_atr
        close = bars.close
        last, avg, finite = width_regime(close[bars.tail_start(self.rd.lookback_bars + ea.bb_period - 1):],
                                         ea.bb_period, ea.bb_std)
        if finite < 2 or not math.isfinite(last) or avg <= 0:
            out = ("stable", 0.0)
        else:
            change = (last / avg - 1.0) * 100.0
            thr = self.cfg.range_invalidation.expansion_threshold_pct
            state = "expanding" if change > thr else "contracting" if change < -thr else "stable"
            out = (state, float(change))
        with _MEMO_LOCK:  # the analysis runs in worker threads (asyncio.to_thread)
            _EXPANSION[key] = (self.cfg, out)
            if len(_EXPANSION) > 512:
                _EXPANSION.popitem(last=False)
        return out

    def invalidation_signals(self, bars: Bars, high: float, low: float, atr: float,
                             expansion: tuple[str, float] | None = None) -> list[str]:
        """Consecutive closes beyond an edge (plus buffer) on the latest bars: the box has broken."""
        inv = self.cfg.range_invalidation
        buf = inv.outside_buffer_atr * atr
        k = inv.candles_outside_range
        out: list[str] = []
        if len(bars) >= k:
            last = bars.close[-k:].tolist()  # a handful of closes: Python compares them faster than numpy
            up, down = high + buf, low - buf
            if all(c > up for c in last):
                out.append(f"The last {k} {bars.timeframe} candles closed above the range top: the range looks broken upward.")
            elif all(c < down for c in last):
                out.append(f"The last {k} {bars.timeframe} candles closed below the range bottom: the range looks broken downward.")
        state, change = expansion or self.expansion_state(bars)
        if state == "expanding":
            out.append(f"Volatility is expanding (Bollinger width {change:+.0f}% versus its average): ranges tend to break when that happens.")
        return out

    def validate_range_integrity(self, rng: RangeStructure) -> tuple[bool, list[str]]:
        """Is this box still tradeable? Returns the reasons when it is not."""
        reasons: list[str] = []
        need = self.rd.min_touches_per_side
        tc = rng.touch_count
        if not rng.validated:
            reasons.append(
                f"The range top was tested {_times(tc.top)} and the bottom {_times(tc.bottom)}; "
                f"I want at least {need} tests of each side before trusting it."
            )
        reasons.extend(s for s in rng.invalidation_signals if "broken" in s)
        lim = self.cfg.range_width
        if not (lim.min_pct <= rng.range_width_pct <= lim.max_pct):
            reasons.append(
                f"The range is {rng.range_width_pct:.2f}% wide, outside the {lim.min_pct:g}-{lim.max_pct:g}% allowed for {self.symbol}."
            )
        return not reasons, reasons

    # -- nesting ----------------------------------------------------------------------------------
    def nested_ranges(self, by_tf: dict[str, tuple[Bars, float]]) -> dict[str, RangeStructure]:
        """Swing ranges on the higher timeframes, for context (no width limits: they are wider by nature).

        They change only when a higher-timeframe bar closes (every 3rd M5 call for M15, every 12th for
        H1), so results are memoised on the exact bytes of the window plus the config and symbol.
        """
        out: dict[str, RangeStructure] = {}
        for tf, (bars, atr) in by_tf.items():
            if len(bars) < self.rd.min_candles or not (atr > 0):
                continue
            key = (id(self.cfg), self.symbol, tf, atr, hash(bars.time.tobytes()), hash(bars.high.tobytes()),
                   hash(bars.low.tobytes()), hash(bars.close.tobytes()))
            hit = _NESTED.get(key)
            if hit is not None and hit[0] is self.cfg:
                r = hit[1]
            else:
                r = self.detect_range(bars, "dynamic", atr=atr, apply_width_limits=False)
                with _MEMO_LOCK:
                    _NESTED[key] = (self.cfg, r)
                    if len(_NESTED) > 256:
                        _NESTED.popitem(last=False)
            if isinstance(r, RangeStructure):
                out[tf] = r
        return out


class RangeCandidate:
    """A range's edges, width and touch counts: all the analysis' pick among its candidates reads. The
    RangeStructure (expansion state, invalidation signals, zones: most of a range's cost) is built by
    `build()`, which the pipeline calls for the picked candidate only; the others were discarded unread."""

    __slots__ = ("det", "range_type", "bars", "range_high", "range_low", "start", "atr", "mid", "width",
                 "range_width_pct", "top", "bottom", "validated")

    def __init__(self, det: RangeBoundaryDetector, range_type: str, bars: Bars, high: float, low: float,
                 start: float, atr: float, mid: float, width: float, width_pct: float, top: int, bottom: int) -> None:
        self.det, self.range_type, self.bars = det, range_type, bars
        self.range_high, self.range_low, self.start, self.atr = high, low, start, atr
        self.mid, self.width, self.range_width_pct, self.top, self.bottom = mid, width, width_pct, top, bottom
        self.validated = top >= det.rd.min_touches_per_side and bottom >= det.rd.min_touches_per_side

    def build(self, nested: dict[str, RangeStructure] | None = None) -> RangeStructure:
        """The RangeStructure; `nested` (the higher-timeframe ranges) goes in at construction rather than by a
        model_copy afterwards: the same fields, one object fewer."""
        det, bars, high, low, atr = self.det, self.bars, self.range_high, self.range_low, self.atr
        extra = {} if nested is None else {"nested_ranges": nested}
        expansion = det.expansion_state(bars)
        return RangeStructure(
            symbol=det.symbol,
            timeframe=bars.timeframe,
            range_type=self.range_type,
            range_high=high,
            range_low=low,
            range_mid=self.mid,
            range_width_atr=self.width / atr if atr > 0 else 0.0,
            range_width_pct=self.range_width_pct,
            atr=atr,
            critical_gaps=det.calculate_critical_gaps(high, low, atr),
            touch_count=TouchCount(top=self.top, bottom=self.bottom),
            validated=self.validated,
            expansion_state=expansion[0],
            invalidation_signals=det.invalidation_signals(bars, high, low, atr, expansion),
            start_time=float(self.start),
            end_time=float(bars.last_close_time or self.start),
            **extra,
        )


def _label(range_type: str) -> str:
    return {"dynamic": "swing range", "session": "session range", "previous_day": "previous day's range"}[range_type]


def _times(n: int) -> str:
    return {0: "never", 1: "once", 2: "twice"}.get(n, f"{n} times")
