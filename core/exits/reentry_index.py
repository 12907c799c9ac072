"""The entries the re-entry rule reads (`RangeScalpingExitManager.check_reentry_allowed`), and an index that
reads only those that can be the asked range.

Why a module of its own: the exit manager holds the registry and its lock; what "the same range" means and
which entries can be it is the rule's arithmetic, which nothing here guards or persists.
"""
from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass


@dataclass(frozen=True)
class RangeEntry:
    """One entry taken on a range, remembered for the re-entry rules (open or closed)."""

    symbol: str
    range_high: float
    range_low: float
    entry_time: float
    exit_time: float | None
    broken: bool = False  # closed by a range invalidation: the market accepted prices outside it


def same_range(a_high: float, a_low: float, b_high: float, b_low: float) -> bool:
    """Two detections of "the same" range overlap by most of their width (edges drift a little per bar).

    It reads min(a_high, b_high) - max(a_low, b_low) over max(min of the two widths, 1e-12); each min/max of
    two is spelled as the builtin picks it (`min(x, y)` is y if y < x else x, NaN and ties included), since
    their four calls were most of its cost and the re-entry rule asks it ~10^4 times per backtest."""
    overlap = (b_high if b_high < a_high else a_high) - (b_low if b_low > a_low else a_low)
    a_width, b_width = a_high - a_low, b_high - b_low
    width = b_width if b_width < a_width else a_width
    return overlap / (1e-12 if 1e-12 > width else width) >= 0.5


def _below(low: float, width: float) -> float:
    """A bound under which no indexed low of an entry at most `width` wide can be `same_range` as a range
    whose low is `low`: such an entry's high is then <= `low`, so its computed overlap is <= 0. The slack
    (1e-9 of |low| + width) dwarfs the few roundings of the entry's width and of this bound (~1e-16 of
    them each), so it holds for every finite edge; an infinite bound only reads more."""
    return low - (width + 1e-9 * (abs(low) + width))


class EntryIndex:
    """Per symbol, the positions in the entries list sorted by range low, so that the re-entry rule reads
    only the entries that can be `same_range` as the asked range instead of every trade ever taken (which
    made a long run quadratic in its trades).

    Why it is exact: for finite edges with high > low, `same_range` needs a positive overlap, so an entry
    can match only if its low < the asked high and its high > the asked low; its low is then above
    `_below(asked low, widest indexed width)`. Entries with other edges (NaN, infinite, empty) are kept
    apart and always read; an asked range with such edges reads everything. Entries still pass the full
    `same_range` test, in the order a scan of the candidates would meet them, so the index only saves
    reading entries that cannot match. It follows the list incrementally: the list only grows by appends
    (a close replaces an entry with the same edges; a reload makes a new list, and a new index)."""

    def __init__(self, entries: list[RangeEntry]) -> None:
        self.source = entries
        self.done = 0
        self.lows: dict[str, list[float]] = {}
        self.pos: dict[str, list[int]] = {}
        self.width: dict[str, float] = {}
        self.odd: dict[str, list[int]] = {}

    def catch_up(self) -> None:
        for i in range(self.done, len(self.source)):
            e = self.source[i]
            hi, lo = e.range_high, e.range_low
            if math.isfinite(hi) and math.isfinite(lo) and hi > lo:
                lows = self.lows.setdefault(e.symbol, [])
                at = bisect_right(lows, lo)
                lows.insert(at, lo)
                self.pos.setdefault(e.symbol, []).insert(at, i)
                self.width[e.symbol] = max(self.width.get(e.symbol, 0.0), hi - lo)
            else:
                self.odd.setdefault(e.symbol, []).append(i)
        self.done = len(self.source)

    def facts(self, symbol: str, high: float, low: float) -> tuple[int, float | None, float | None]:
        """(entries on this range, last exit of a broken one, last exit), the entries caught up first.

        One pass over the candidates' positions (no list of the entries themselves): `max` of the exits in
        the order the entries are met, as a list of the matching entries would give them."""
        src = self.source
        if self.done != len(src):
            self.catch_up()
        if not (math.isfinite(high) and math.isfinite(low) and high > low):
            at: list[int] | range = range(len(src))  # every entry, the symbol tested below
        else:
            lows = self.lows.get(symbol)
            at = []
            if lows:
                at = self.pos[symbol][bisect_right(lows, _below(low, self.width[symbol])):bisect_left(lows, high)]
            odd = self.odd.get(symbol)
            if odd:
                at = at + odd
        n = 0
        exits: list[float] = []
        broken: list[float] = []
        for i in at:
            e = src[i]
            if e.symbol == symbol and same_range(e.range_high, e.range_low, high, low):
                n += 1
                x = e.exit_time
                if x is not None:
                    exits.append(x)
                    if e.broken:
                        broken.append(x)
        return n, max(broken) if broken else None, max(exits) if exits else None
