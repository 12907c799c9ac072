"""The range screen's per-bar keys as `core.backtest.range_keys` computed them before it was made faster
(`build_bar_keys` and the helpers it changed, verbatim but for names): the reference that
`tests/test_backtest_screens_exact.py` compares the current screens with, on real series."""
from __future__ import annotations

import numpy as np

from core.backtest.prescreen import MARGIN, _surely_gt, _surely_lt, windowed_wilder
from core.backtest.range_keys import (
    _DAY,
    BarKeys,
    _edges_at,
    _range_extreme,
    _visits,
    count_beyond,
    previous_day_spans,
    session_windows,
)
from core.domain.timeframes import Timeframe


def _unique_rows(cols: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(index of one row per distinct row, the distinct row of every row) for integer columns."""
    n = len(cols[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.lexsort(cols[::-1])
    srt = [c[order] for c in cols]
    new = np.ones(n, dtype=bool)
    new[1:] = np.any([c[1:] != c[:-1] for c in srt], axis=0)
    group = np.cumsum(new) - 1
    back = np.empty(n, dtype=np.int64)
    back[order] = group
    return order[new], back


def build_bar_keys(tcfg, candles: np.ndarray, tf_sec: int, frames: dict[str, np.ndarray], sizes: dict[str, int],
                   stf: str, atr: np.ndarray, entries: list[np.ndarray], inside: np.ndarray | None = None) -> BarKeys:
    """`inside`: bars where the dynamic range surely is a candidate within an ATR of the last close (see
    `core.backtest.range_screen`): a candidate surely outside is then never the analysis' pick."""
    rd = tcfg.range_detection
    pick = _Pick(candles["close"].astype(np.float64), inside, tf_sec, tcfg)
    nows = candles["time"].astype(np.float64) + tf_sec
    end = {}
    for tf, arr in frames.items():
        secs = Timeframe.parse(tf).seconds
        end[tf] = np.searchsorted(arr["time"].astype(np.int64), np.floor(nows - secs).astype(np.int64),
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
    lo = np.maximum(b0, np.searchsorted(times, ws, side="left"))
    hi = np.minimum(end[stf], np.searchsorted(times, we, side="left"))
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
    bt = np.clip(np.searchsorted(times, today, side="left"), b0, end)  # `before`: [b0, bt)
    need = max(2, int(4 * 3600 // 3600))
    # the span depends on (b0, bt) only: solve each distinct pair once
    first, back = _unique_rows([b0, bt])
    p0, p1, p2, none = previous_day_spans(times, b0[first], bt[first], need)
    lo, hi = p0[back], p1[back]
    empty = none[back]
    tlo = np.maximum(p2[back], b0)
    return _candidate_possible(tcfg, f, size, end, lo, hi, tlo, empty, atr, entries, pick)


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
    H = _range_extreme(high, lo, hi, np.maximum)
    L = _range_extreme(low, lo, hi, np.minimum)
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
        unpicked = pick.rules_out(H, L, m5, slack) if pick is not None else np.zeros(len(end), dtype=bool)
    # the width test comes before the ATR in `LazyRanges._prepared`: it needs the edges only
    ruled_out = (known & (~near | unpicked)) | (edges & bad_width)
    rows = np.flatnonzero(known & ~ruled_out)
    # the count depends on (end, tlo, lo, hi) only: the bars of one M15 / H1 bar share it
    first, back = _unique_rows([end[rows], tlo[rows], lo[rows], hi[rows]])
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

    def rules_out(self, H: np.ndarray, L: np.ndarray, m5: np.ndarray, slack: np.ndarray) -> np.ndarray:
        x, n = self.close, len(self.close)
        out = np.zeros(n, dtype=bool)
        if self.inside is not None:  # the dynamic range is inside: one surely outside is not in the pool
            out |= self.inside & ((x < L - m5 - slack) | (x > H + m5 + slack))
        k = self.hour
        if n >= k:  # at least `max_closes_beyond_edges` of the last hour's closes beyond an edge ± buffer
            hi, lo = (H + self.buf * m5 + slack)[k - 1:], (L - self.buf * m5 - slack)[k - 1:]
            cnt = count_beyond(x, k, hi, lo)
            out[k - 1:] |= (cnt >= self.most) & (cnt > 0)
        return out


def _few_touches(tcfg, high, low, size, end, lo, H, L, fatr, rows) -> np.ndarray:
    """Per bar in `rows`: surely fewer than `min_touches_per_side` visits of an edge among the touch
    bars [lo, end) (`count_touches` with the tolerance from the window's ATR, known to rounding: the
    count is trusted only where the tolerance's last bits cannot change which bars are near)."""
    rd = tcfg.range_detection
    out = np.zeros(len(rows), dtype=bool)
    # `size` NaN bars in front (never near, and before every touch window), so a window may start before the
    # frame's first bar (e < size: the frame's first e bars). Rows go by their touch span, narrowest first, and
    # each chunk reads only the last W bars of its windows (W: its widest span): the bars before a touch
    # window are masked out anyway, and leading non-near bars change no visit count.
    ph, pl = (np.concatenate((np.full(size, np.nan), x)) for x in (high, low))
    span = end[rows] - lo[rows]
    order = np.argsort(span, kind="stable")
    need = rd.min_touches_per_side
    for s in range(0, len(rows), 4096):
        q = order[s:s + 4096]
        r = rows[q]
        e = end[r]
        w = max(1, int(span[q].max()))
        start = e - w + size  # in the padded arrays
        inside = np.arange(w)[None, :] >= (lo[r] - (e - w))[:, None]
        tol = rd.touch_tolerance_atr * fatr[e - 1]
        lo_t, hi_t = (tol * (1 - MARGIN))[:, None], (tol * (1 + MARGIN))[:, None]
        hh = np.lib.stride_tricks.sliding_window_view(ph, w)[start]
        ll = np.lib.stride_tricks.sliding_window_view(pl, w)[start]
        Hs, Ls = H[r][:, None], L[r][:, None]
        nt_lo, nt_hi = (hh >= Hs - lo_t) & inside, (hh >= Hs - hi_t) & inside
        nb_lo, nb_hi = (ll <= Ls + lo_t) & inside, (ll <= Ls + hi_t) & inside
        exact = ~(np.any(nt_lo != nt_hi, axis=1) | np.any(nb_lo != nb_hi, axis=1))
        out[q] = exact & ((_visits(nt_lo) < need) | (_visits(nb_lo) < need))
    return out




def pick_rules_out(pick, H, L, m5, slack) -> np.ndarray:
    """The whole-series `_Pick.rules_out` that was, on a current `_Pick`'s settings."""
    return _Pick.rules_out(pick, H, L, m5, slack)
