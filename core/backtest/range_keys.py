"""Per-bar inputs of `core.backtest.range_screen.LazyRanges`, computed once per run instead of per call.

Why: the range screen asks, at every flat bar, for the session and previous-day candidates. Building
their cache keys per call (a search of the frame's times plus a session-window lookup, per kind) and
running the live detector on every new M15 / H1 bar, even when that candidate could not pass, were
most of the screen's time. So, per bar, once:

* `end[tf]`: how many bars of that frame have closed at the bar's close (the end of the window
  `Bars.closed_window` cuts: open + length <= now), one vectorised search over all bars;
* the session window (`core.domain.sessions.window_containing_or_before` at now - 1 s, as the detector asks
  it). It is the latest window that started by that instant, so it only moves forward in time: it is
  the live function's answer, found by bisection where two bars' answers differ;
* `session_possible` / `day_possible`: False where `LazyRanges._candidate` surely returns None for
  that kind: the detector finds no edges (too few bars in the session / no previous trading day,
  the same index steps as `_session_edges` / `_previous_day_edges`), the width surely breaks the
  limits, no entry is within the reach `_candidate` tests of the edges, or an edge surely has fewer
  than two separate touches, or it surely is not the analysis' passing pick (`_Pick`). Edges are exact (max / min of the same bars). The window's ATR is the
  closed form of `core.backtest.prescreen.windowed_wilder`, equal to the detector's `atr_last` but
  for the last bits, so the reach uses it `MARGIN` larger and a touch count is trusted only where
  the tolerance's last bits cannot change it: every doubt errs towards running the detector. A window
  shorter than its full size (early in the data) is the frame's first bars, with their ATR (the partial
  windows of `windowed_wilder`); where that ATR is unknown or not positive only the width is tested.

Look-ahead: at bar i everything reads the frame's bars closed by the close of bar i (indices below
`end[tf][i]`, within the analysis' window), the quote then (`entries`, as `core.backtest.prescreen`)
and the clock; nothing later. `tests/test_backtest_prescreen.py` checks keys and windows against
the live functions and that the exact path finds no candidate wherever one is ruled out.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.backtest.prescreen import MARGIN, _surely_gt, _surely_lt, windowed_wilder
from core.domain.sessions import window_containing_or_before
from core.domain.timeframes import Timeframe

_DAY = 86400.0
_TOUCH_CHUNK = 256  # rows per chunk of `_few_touches`


@dataclass(frozen=True)
class Edges:
    """A candidate's edges: all the re-entry rule (`check_reentry_allowed`) reads of a range."""

    range_high: float
    range_low: float


@dataclass
class BarKeys:
    """Arrays per primary bar, read with `.item(i)` (Python scalars) at the few thousand bars a run asks."""

    nows: np.ndarray  # close time of each primary bar: the keys hold only when asked at that instant
    end: dict[str, np.ndarray]  # per frame: bars closed at now
    win_start: np.ndarray | None  # the session window the detector uses at now (None: no such session)
    win_end: np.ndarray | None
    session_possible: np.ndarray | None  # False: surely not one `_candidate` returns, or not the pick (`_Pick`)
    day_possible: np.ndarray | None  # the same for the previous day's range
    # where possible: the candidate's edges, which are the detector's own if it finds the candidate there
    session_edges: dict[int, Edges] = field(default_factory=dict)
    day_edges: dict[int, Edges] = field(default_factory=dict)


def _edges_at(possible: np.ndarray, H: np.ndarray | None, L: np.ndarray | None) -> dict[int, Edges]:
    """{bar: Edges} where the candidate is possible (one object per distinct pair: the bars of one frame bar
    share it)."""
    if H is None or L is None:
        return {}
    idx = np.flatnonzero(possible & np.isfinite(H) & np.isfinite(L))
    made: dict[tuple[float, float], Edges] = {}
    out = {}
    for i, h, lo in zip(idx.tolist(), H[idx].tolist(), L[idx].tolist(), strict=True):
        e = made.get((h, lo))
        if e is None:
            e = made[(h, lo)] = Edges(h, lo)
        out[i] = e
    return out


def session_windows(name: str, definition, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`window_containing_or_before(name, definition, t)` for every t of the ascending `ts`: between
    two instants with the same answer every instant has it (the answer only moves forward)."""
    n = len(ts)
    starts, ends = np.empty(n), np.empty(n)
    if n == 0:
        return starts, ends

    def at(j: int):
        return window_containing_or_before(name, definition, float(ts[j]))

    # Cut the span where the next window starts (the latest start by a day and a DST hour on), so most
    # pieces hold one window and cost their two end look-ups instead of a bisection; a cut in the wrong
    # place only leaves a piece whose ends differ, which is bisected as before.
    cuts = [0]
    w = at(0)
    last = float(ts[n - 1])
    while w.start <= last:
        nxt = window_containing_or_before(name, definition, w.start + _DAY + 3600.0)
        if not nxt.start > w.start:
            break
        j = int(np.searchsorted(ts, nxt.start, side="left"))
        if j > cuts[-1] and j < n:
            cuts.append(j)
        w = nxt
    bounds = cuts + [n]
    todo = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        todo.append((lo, hi - 1, at(lo), at(hi - 1)))
    while todo:
        lo, hi, wlo, whi = todo.pop()
        if wlo == whi:
            starts[lo:hi + 1], ends[lo:hi + 1] = wlo.start, wlo.end
            continue
        starts[lo], ends[lo] = wlo.start, wlo.end
        starts[hi], ends[hi] = whi.start, whi.end
        if hi - lo > 1:
            mid = (lo + hi) // 2
            wm = at(mid)
            todo += [(lo, mid, wlo, wm), (mid, hi, wm, whi)]
    return starts, ends


def _runs(*cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each run of equal consecutive rows, the run of every row). Per-bar keys mostly hold for a
    whole frame bar or day, so a function of them is evaluated once per run and spread back: the same values."""
    new = np.zeros(len(cols[0]), dtype=bool)
    new[:1] = True
    for c in cols:
        new[1:] |= c[1:] != c[:-1]
    return np.flatnonzero(new), np.cumsum(new) - 1


def _range_extreme(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, fn) -> np.ndarray:
    """fn (np.maximum / np.minimum) of x[lo:hi] per query, exact (a sparse table); NaN where hi <= lo."""
    out = np.full(len(lo), np.nan)
    ok = hi > lo
    if not ok.any() or len(x) == 0:
        return out
    length = (hi - lo)[ok]
    longest = min(len(x), int(length.max()))
    table = [x]
    while 2 ** len(table) <= longest:  # levels up to the longest query: the rest would never be read
        prev, step = table[-1], 2 ** (len(table) - 1)
        table.append(fn(prev[:-step], prev[step:]))
    k = np.floor(np.log2(length)).astype(np.int64)
    k = np.where(2 ** (k + 1) <= length, k + 1, k)  # guard log2 rounding at powers of two
    k = np.where(2 ** k > length, k - 1, k)
    a, b = lo[ok], hi[ok] - 2 ** k
    res = np.empty(len(a))
    for level in range(len(table)):  # the levels in use (np.unique of k cost more than these passes)
        m = k == level
        if not m.any():
            continue
        t = table[level]
        res[m] = fn(t[a[m]], t[b[m]])
    out[ok] = res
    return out


def build_bar_keys(tcfg, candles: np.ndarray, tf_sec: int, frames: dict[str, np.ndarray], sizes: dict[str, int],
                   stf: str, atr: np.ndarray, entries: list[np.ndarray], inside: np.ndarray | None = None) -> BarKeys:
    """`inside`: bars where the dynamic range surely is a candidate within an ATR of the last close (see
    `core.backtest.range_screen`): a candidate surely outside is then never the analysis' pick."""
    rd = tcfg.range_detection
    pick = _Pick(candles["close"].astype(np.float64), inside, tf_sec, tcfg)
    nows = candles["time"].astype(np.float64) + tf_sec
    end = {}
    for tf in dict.fromkeys((stf, "H1")):  # the frames the candidates are cut from (`LazyRanges._window`)
        if tf in frames:
            secs = Timeframe.parse(tf).seconds
            end[tf] = np.searchsorted(frames[tf]["time"].astype(np.int64), np.floor(nows - secs).astype(np.int64),
                                      side="right")
    day_possible, day_edges = None, {}
    if "H1" in frames:
        dp, dh, dl = _previous_day_possible(tcfg, frames["H1"], sizes["H1"], end["H1"], nows, atr, entries, pick)
        day_possible, day_edges = dp, _edges_at(dp, dh, dl)
    definition = tcfg.sessions.definitions.get(rd.session_range)
    if definition is None or stf not in frames:
        return BarKeys(nows, end, None, None, None, day_possible, {}, day_edges)
    ws, we = session_windows(rd.session_range, definition, nows - 1.0)
    f = frames[stf]
    times = f["time"].astype(np.float64)
    b0 = np.maximum(end[stf] - sizes[stf], 0)
    first, run = _runs(ws, we)  # a session window holds for many bars: search its bounds once
    lo = np.maximum(b0, np.searchsorted(times, ws[first], side="left")[run])
    hi = np.minimum(end[stf], np.searchsorted(times, we[first], side="left")[run])
    # `_session_edges`: fewer than max(3, one hour of) bars inside the session -> no range, whatever the ATR
    empty = hi - lo < max(3, int(3600 // Timeframe.parse(stf).seconds))
    possible, sh, sl = _candidate_possible(tcfg, f, sizes[stf], end[stf], lo, hi, lo, empty, atr, entries, pick)
    return BarKeys(nows, end, ws, we, possible, day_possible,
                   _edges_at(possible, sh, sl), day_edges)


def _previous_day_possible(tcfg, f: np.ndarray, size: int, end: np.ndarray, nows: np.ndarray, atr: np.ndarray,
                           entries: list[np.ndarray], pick: _Pick | None = None) -> tuple:
    """`RangeBoundaryDetector._previous_day_edges` on the H1 window [b0, end) at each bar, as index spans of
    the frame: the last day before today with at least `need` bars (up to five steps back), same steps."""
    times = f["time"].astype(np.float64)
    b0 = np.maximum(end - size, 0)
    today = np.floor(nows / _DAY) * _DAY
    days, day = _runs(today)
    bt = np.clip(np.searchsorted(times, today[days], side="left")[day], b0, end)  # `before`: [b0, bt)
    need = max(2, int(4 * 3600 // 3600))
    # the span depends on (b0, bt) only: solve it once per run of equal pairs
    first, back = _runs(b0, bt)
    p0, p1, p2, none = previous_day_spans(times, b0[first], bt[first], need)
    lo, hi = p0[back], p1[back]
    empty = none[back]
    tlo = np.maximum(p2[back], b0)
    return _candidate_possible(tcfg, f, size, end, lo, hi, tlo, empty, atr, entries, pick)


def previous_day_spans(times: np.ndarray, s: np.ndarray, t: np.ndarray, need: int
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per pair: (first, end) of the previous trading day's bars within `before` = frame bars [s, t), the frame
    index of that day's 00:00 (where the touch bars start), and True where the detector returns a NoRange.

    `RangeBoundaryDetector._previous_day_edges`' steps for all pairs at once: start at the day of the last
    bar before today; while that day has fewer than `need` bars and `before` holds earlier bars, step back
    to the day of the bar before it (up to five looks). Days are floor(t / 86400) * 86400, the detector's
    float; searches on the frame's times are its `between` / `since` searches."""
    m = len(s)
    p0 = np.zeros(m, dtype=np.int64)
    p1 = np.zeros(m, dtype=np.int64)
    day0 = np.zeros(m)
    live = np.flatnonzero(t > s)
    day0[live] = np.floor(times[t[live] - 1] / _DAY) * _DAY
    for _ in range(5):
        if len(live) == 0:
            break
        lo_, hi_ = s[live], t[live]
        a = np.clip(np.searchsorted(times, day0[live], side="left"), lo_, hi_)
        b = np.clip(np.searchsorted(times, day0[live] + _DAY, side="left"), lo_, hi_)
        p0[live], p1[live] = a, b
        go_on = (b - a < need) & (a > lo_)
        nxt = live[go_on]
        day0[nxt] = np.floor(times[p0[nxt] - 1] / _DAY) * _DAY
        live = nxt
    none = (t <= s) | (p1 - p0 < need)
    p2 = np.searchsorted(times, day0, side="left")
    return p0, p1, p2, none


def _candidate_possible(tcfg, f: np.ndarray, size: int, end: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                        tlo: np.ndarray, empty: np.ndarray, atr: np.ndarray, entries: list[np.ndarray],
                        pick: _Pick | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Per bar: could `LazyRanges._candidate` return this candidate, whose edges are the extremes of frame
    bars [lo, hi) and whose touch bars are [tlo, end)? False where `empty` (the detector finds no edges).
    Also those extremes (high, low), NaN where [lo, hi) is empty."""
    rd, ef, inv = tcfg.range_detection, tcfg.entry_filters, tcfg.range_invalidation
    high, low, close = (f[k].astype(np.float64) for k in ("high", "low", "close"))
    period = tcfg.effective_atr.atr_period
    possible = ~empty
    if size < period or len(f) == 0:
        return possible, None, None
    hl = high - low
    tr = hl.copy()
    tr[1:] = np.maximum(tr[1:], np.maximum(np.abs(high[1:] - close[:-1]), np.abs(low[1:] - close[:-1])))
    # partial: a window shorter than its full size (the frame's first `end` bars, early in the data) has
    # the ATR of those bars, as `atr_last` on the short window `Bars.closed_window` cuts there
    fatr = windowed_wilder(hl, tr, period, size, partial=True)
    first, run = _runs(lo, hi)
    H = _range_extreme(high, lo[first], hi[first], np.maximum)[run]
    L = _range_extreme(low, lo[first], hi[first], np.minimum)[run]
    a = np.where(end >= 1, fatr[np.maximum(end - 1, 0)], np.nan) * (1 + MARGIN)
    m5 = np.asarray(atr, dtype=np.float64)
    edges = ~empty & np.isfinite(H) & np.isfinite(L)
    known = edges & np.isfinite(a) & (a > 0) & np.isfinite(m5) & (m5 > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mid = (H + L) / 2.0
        wp = np.where(mid != 0, (H - L) / mid * 100.0, 0.0)
        lim = tcfg.range_width
        bad_width = _surely_lt(wp, lim.min_pct) | _surely_gt(wp, lim.max_pct)
        slack = MARGIN * (np.abs(H) + np.abs(L) + a + m5) * 2.0
        thr = ef.price_edge_threshold_atr * m5
        inner = np.maximum((H - L) * rd.critical_zone_fraction, thr) + slack
        outer = np.maximum(inv.outside_buffer_atr * a, thr) + slack
        near = np.zeros(len(end), dtype=bool)
        for e in entries:
            x = np.asarray(e, dtype=np.float64)
            near |= ((H - inner <= x) & (x <= H + outer)) | ((L - outer <= x) & (x <= L + inner))
    # the width test comes before the ATR in `LazyRanges._prepared`: it needs the edges only
    ruled_out = (known & ~near) | (edges & bad_width)
    rows = np.flatnonzero(known & ~ruled_out)
    if pick is not None:  # where it is not the pick (`_Pick`): read on the bars nothing else rules out
        with np.errstate(invalid="ignore"):
            ruled_out[rows] = pick.rules_out(rows, H[rows], L[rows], m5[rows], slack[rows])
        rows = rows[~ruled_out[rows]]
    # the count depends on (end, tlo, lo, hi) only: the bars of one M15 / H1 bar share it
    first, back = _runs(end[rows], tlo[rows], lo[rows], hi[rows])
    ruled_out[rows] |= _few_touches(tcfg, high, low, size, end, tlo, H, L, fatr, rows[first])[back]
    possible[ruled_out] = False
    return possible, H, L


class _Pick:
    """Per bar, what `core.analysis.pipeline._detect`'s pick and `detect_false_range` demand of a candidate
    with edges (H, L) to be the judged, passing range (as `RangeScreen._admits`, for all bars at once)."""

    def __init__(self, close: np.ndarray, inside: np.ndarray | None, tf_sec: int, tcfg) -> None:
        self.close, self.inside = close, inside
        self.hour = max(1, int(3600 // tf_sec))
        self.most, self.buf = tcfg.false_range.max_closes_beyond_edges, tcfg.range_invalidation.outside_buffer_atr

    def rules_out(self, rows: np.ndarray, H: np.ndarray, L: np.ndarray, m5: np.ndarray, slack: np.ndarray
                  ) -> np.ndarray:
        """At the bars `rows` (ascending), whose edges, ATR and slack H, L, m5, slack are: asked only where
        nothing else rules the candidate out, a small share of the bars."""
        x, k = self.close[rows], self.hour
        out = np.zeros(len(rows), dtype=bool)
        if self.inside is not None:  # the dynamic range is inside: one surely outside is not in the pool
            out |= self.inside[rows] & ((x < L - m5 - slack) | (x > H + m5 + slack))
        # at least `max_closes_beyond_edges` of the last hour's closes beyond an edge ± buffer (full hours only)
        hi, lo = H + self.buf * m5 + slack, L - self.buf * m5 - slack
        cnt = np.zeros(len(rows), dtype=np.int64)
        for j in range(k):
            w = self.close[np.maximum(rows - j, 0)]
            cnt += (w > hi) | (w < lo)
        out |= (rows >= k - 1) & (cnt >= self.most) & (cnt > 0)
        return out


def _few_touches(tcfg, high, low, size, end, lo, H, L, fatr, rows) -> np.ndarray:
    """Per bar in `rows`: surely fewer than `min_touches_per_side` visits of an edge among the touch
    bars [lo, end) (`count_touches` with the tolerance from the window's ATR, known to rounding: the
    count is trusted only where the tolerance's last bits cannot change which bars are near)."""
    rd = tcfg.range_detection
    out = np.zeros(len(rows), dtype=bool)
    # Rows go by their touch span, narrowest first, and each chunk reads only the last W bars of its windows
    # (W: its widest span; small chunks keep W close to each row's own span, which halved the time), as a
    # (bar, row) table (compares along contiguous rows, as `range_dynamic._touch_tests`). A bar before a row's
    # touch window (or before the frame's first bar) reads a NaN instead: never near, and leading non-near
    # bars change no visit count.
    nan = len(high)
    ph, pl = (np.append(x, np.nan) for x in (high, low))
    span = end[rows] - lo[rows]
    order = np.argsort(span, kind="stable")
    need = rd.min_touches_per_side
    for s in range(0, len(rows), _TOUCH_CHUNK):
        q = order[s:s + _TOUCH_CHUNK]
        r = rows[q]
        e = end[r]
        w = max(1, int(span[q].max()))
        at = (e - w)[None, :] + np.arange(w)[:, None]  # at[j, row]: the frame bar j of the row's last w
        at = np.where(at >= lo[r][None, :], at, nan)
        tol = rd.touch_tolerance_atr * fatr[e - 1]
        lo_t, hi_t = tol * (1 - MARGIN), tol * (1 + MARGIN)
        hh, ll = ph[at], pl[at]
        Hs, Ls = H[r], L[r]
        nt_lo, nt_hi = hh >= Hs - lo_t, hh >= Hs - hi_t
        nb_lo, nb_hi = ll <= Ls + lo_t, ll <= Ls + hi_t
        exact = ~((nt_lo != nt_hi) | (nb_lo != nb_hi)).any(axis=0)
        out[q] = exact & ((_visits(nt_lo, axis=0) < need) | (_visits(nb_lo, axis=0) < need))
    return out


def _visits(near: np.ndarray, axis: int = 1) -> np.ndarray:
    """`core.analysis.range.detector.count_touches` per window, the bars of a window along `axis` (1: a row
    per window; 0: a column per window) (bars before the touch window are never near): consecutive near
    bars count once, so a visit is a rise from 0 to 1 of the window's bytes (< 256 bars fit the uint8 count)."""
    u = np.moveaxis(near.view(np.uint8), axis, 0)  # bars first
    if u.shape[0] > 255:
        return u[0].astype(np.int64) + np.count_nonzero(u[1:] > u[:-1], axis=0)
    return u[0].astype(np.int64) + np.add.reduce(u[1:] > u[:-1], axis=0, dtype=np.uint8)


def count_beyond(x: np.ndarray, k: int, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Per i >= k-1: how many of x[i-k+1..i] are > hi[j] or < lo[j], j = i-k+1 (the thresholds of the window
    ending at i); one pass per lag over whole columns instead of a k-wide window per row."""
    n = len(x) - k + 1
    cnt = np.zeros(n, dtype=np.int64)
    for j in range(k):
        w = x[j:j + n]
        cnt += (w > hi) | (w < lo)
    return cnt
