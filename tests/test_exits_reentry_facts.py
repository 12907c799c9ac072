"""`EntryIndex.facts` (one pass over the index's candidates, a bound at one indexed width under the asked low)
answers exactly as the index it replaced (candidates from two widths under the asked low, then lists of the
matching entries), and as reading every entry ever taken: on every ask of a real backtest (the range screen's
and the engine's, with the entries as they were then), on the real trades' ranges, and on degenerate edges
(NaN, infinite, equal, inverted, tiny and huge widths, entries right at the bound, many entries, broken ranges).
A full scan meets the entries in another order, so with NaN or signed-zero exit times (which no clock gives)
only the old index is the same to the bit."""
from __future__ import annotations

import math
import random
from bisect import bisect_left

import numpy as np
import pytest

from core.backtest.engine import BacktestEngine, BacktestSpec
from core.config.loading import load_config
from core.config.paths import market_data_dir
from core.data.loaders import load_candles
from core.exits.manager import RANGE_BROKEN, RangeScalpingExitManager
from core.exits.reentry_index import EntryIndex, RangeEntry, same_range


def full_scan(entries: list[RangeEntry], symbol: str, high: float, low: float) -> tuple:
    """The rule as it reads without an index (the code `facts` replaced)."""
    same = [e for e in entries if e.symbol == symbol and same_range(e.range_high, e.range_low, high, low)]
    broken = [e.exit_time for e in same if e.broken and e.exit_time is not None]
    exits = [e.exit_time for e in same if e.exit_time is not None]
    return len(same), max(broken) if broken else None, max(exits) if exits else None


class OldIndex(EntryIndex):
    """The candidates and the lists the manager read before `facts` (its `_EntryIndex` and `_range_facts`)."""

    def candidates(self, symbol: str, high: float, low: float) -> list[RangeEntry]:
        src = self.source
        if not (math.isfinite(high) and math.isfinite(low) and high > low):
            return [e for e in src if e.symbol == symbol]
        lows = self.lows.get(symbol, [])
        a = bisect_left(lows, low - 2.0 * self.width.get(symbol, 0.0))
        b = bisect_left(lows, high)
        return [src[i] for i in self.pos.get(symbol, [])[a:b]] + [src[i] for i in self.odd.get(symbol, [])]

    def facts(self, symbol: str, high: float, low: float) -> tuple:
        self.catch_up()
        same = [e for e in self.candidates(symbol, high, low)
                if e.symbol == symbol and same_range(e.range_high, e.range_low, high, low)]
        broken = [e.exit_time for e in same if e.broken and e.exit_time is not None]
        exits = [e.exit_time for e in same if e.exit_time is not None]
        return len(same), max(broken) if broken else None, max(exits) if exits else None


def _same(a: tuple, b: tuple) -> bool:
    return repr(a) == repr(b)  # NaN equal to NaN, -0.0 apart from 0.0


def _equal(a: tuple, b: tuple) -> bool:
    """Equal values (the order entries are met in may pick another signed zero)."""
    return a == b


@pytest.fixture(scope="module")
def real_run():
    """A backtest of real XAUUSD bars: its trades, and every re-entry ask with the entries then."""
    cfg = load_config()
    c = load_candles(market_data_dir() / "budimanlai__forex-tick/data/XAUUSD_M5.csv", tz_offset_hours=2)
    asks: list[tuple] = []
    real = EntryIndex.facts

    def spy(self, symbol, high, low):
        got = real(self, symbol, high, low)
        asks.append((list(self.source), symbol, high, low, got))
        return got

    mp = pytest.MonkeyPatch()
    mp.setattr(EntryIndex, "facts", spy)
    try:
        rep = BacktestEngine(cfg, BacktestSpec("XAUUSDc", c)).run()
    finally:
        mp.undo()
    return rep.trades, asks


def test_every_ask_of_a_real_backtest_equals_the_full_scan(real_run):
    trades, asks = real_run
    assert len(trades) > 20 and len(asks) > 500
    assert max(len(a[0]) for a in asks) > 20
    assert sum(1 for a in asks if a[4][0] > 0) > 100  # asks about ranges already traded
    for entries, symbol, high, low, got in asks:
        old = OldIndex(entries)
        assert _same(got, old.facts(symbol, high, low)), (symbol, high, low)
        assert _same(got, full_scan(entries, symbol, high, low)), (symbol, high, low)


def _entries_of(trades, rnd: random.Random) -> list[RangeEntry]:
    out = []
    for t in trades:
        m = t.metadata
        broken = t.exit_reason == RANGE_BROKEN or rnd.random() < 0.1
        out.append(RangeEntry(t.symbol, float(m["range_high"]), float(m["range_low"]), t.entry_time,
                              t.exit_time if rnd.random() < 0.9 else None, broken))
    return out


def _check(entries: list[RangeEntry], asks: list[tuple[str, float, float]], step: int = 7) -> int:
    """Grow one index entry by entry (as the manager's list grows), asking everything every `step` entries."""
    src: list[RangeEntry] = []
    index, old = EntryIndex(src), OldIndex(src)
    n, nan_exit = 0, False
    for i, e in enumerate(entries):
        src.append(e)
        nan_exit |= e.exit_time != e.exit_time
        if i % step and i != len(entries) - 1:
            continue
        for sym, h, lo in asks:
            got = index.facts(sym, h, lo)
            assert _same(got, old.facts(sym, h, lo)), (i, sym, h, lo)
            assert nan_exit or _equal(got, full_scan(src, sym, h, lo)), (i, sym, h, lo)
            n += 1
    return n


def test_real_trade_ranges_shifted_and_scaled_equal_the_full_scan(real_run):
    trades, _ = real_run
    rnd = random.Random(3)
    entries = _entries_of(trades, rnd)
    asks = []
    for e in entries:
        w = e.range_high - e.range_low
        for dl, dh in ((0, 0), (-w, -w), (w, w), (-0.5 * w, -0.5 * w), (0.49 * w, 0.51 * w), (-w, 0), (0, w),
                       (-2 * w, -1.01 * w), (0.3 * w, -0.3 * w)):
            asks.append((e.symbol, e.range_high + dh, e.range_low + dl))
    asks += [("EURUSDc", e.range_high, e.range_low) for e in entries[:5]]
    assert _check(entries, asks, step=15) > 5000


def test_degenerate_edges_and_the_bound_equal_the_full_scan():
    rnd = random.Random(5)
    odd = [(math.nan, 1.0), (1.0, math.nan), (math.inf, 1.0), (2.0, -math.inf), (math.inf, -math.inf),
           (1.5, 1.5), (1.0, 2.0), (-math.inf, math.inf), (0.0, -0.0), (5e-324, 0.0), (1e308, -1e308)]
    entries: list[RangeEntry] = []
    asks: list[tuple[str, float, float]] = []
    for i in range(600):
        sym = "A" if i % 5 else "B"
        kind = rnd.random()
        if kind < 0.1:
            h, lo = rnd.choice(odd)
        elif kind < 0.25:  # tiny widths (subnormal too) and huge magnitudes
            base = rnd.choice([0.0, 1e-300, -1e-310, 2000.0, 1e15, -3e200])
            w = rnd.choice([5e-324, 1e-320, 1e-15, 1e-9, 1.0]) * rnd.randint(1, 9)
            h, lo = base + w, base
        else:
            lo = rnd.choice([1900.0, 1.08, -50.0, 0.0]) + rnd.uniform(-20, 20)
            h = lo + rnd.choice([0.001, 0.5, 3.0, 15.0]) * rnd.uniform(0.5, 2)
        exit_time = rnd.choice([None, 1.0e9 + i * 60, math.nan, 0.0, -0.0, 1.0e9])
        entries.append(RangeEntry(sym, h, lo, 1.0e9 + i, exit_time, rnd.random() < 0.15))
        asks.append((sym, h, lo))
        if math.isfinite(h) and math.isfinite(lo) and h > lo:
            w = h - lo
            asks += [(sym, lo, lo - w), (sym, lo + 0.5 * w, lo - 0.5 * w), (sym, h + w, h),  # touching, half
                     (sym, np.nextafter(lo, -math.inf), lo - w), (sym, h + 0.0 * w, lo - 1e-9 * w)]
    asks += [("A", h, lo) for h, lo in odd] + [("C", 2.0, 1.0)]
    assert _check(entries, rnd.sample(asks, 250), step=37) > 3000
    finite = [e if e.exit_time == e.exit_time else RangeEntry(*list(e.__dict__.values())[:4], None, e.broken)
              for e in entries]
    assert _check(finite, rnd.sample(asks, 250), step=37) > 3000  # against the full scan too


def test_the_manager_answers_from_the_index_as_from_a_full_scan():
    """Through `check_reentry_allowed` / `reentry_blocked_until` (cooldowns, the cap, broken ranges, a reload):
    the verdict and its wording, as the rule over every entry."""
    rnd = random.Random(9)
    mgr = RangeScalpingExitManager()
    entries = [RangeEntry("XAUUSDc", 2000.0 + d + w, 2000.0 + d, 1e9 + i * 600, 1e9 + i * 600 + 300,
                          rnd.random() < 0.05)
               for i, (d, w) in enumerate((rnd.uniform(-30, 30), rnd.uniform(2, 12)) for _ in range(300))]
    mgr._entries = entries  # as `load` leaves them: a new list, a new index
    for cooldown, cap in ((30.0, 2), (0.0, 50), (600.0, 5)):
        for _ in range(300):
            h = 2000.0 + rnd.uniform(-40, 40)
            lo = h - rnd.uniform(1, 15)
            rng = RangeEntry("XAUUSDc", h, lo, 0.0, None)
            now = 1e9 + rnd.uniform(0, 300 * 600 + 40000)
            n, broken_at, last = full_scan(entries, "XAUUSDc", h, lo)
            ok, why = mgr.check_reentry_allowed("XAUUSDc", rng, now, cooldown, cap)
            until = mgr.reentry_blocked_until("XAUUSDc", rng, now, cooldown, cap)
            if broken_at is not None:
                assert not ok and "broke during an earlier trade" in why and until == math.inf
            elif n > cap:
                assert not ok and why.startswith(f"this XAUUSDc range has already been traded {n} time(s)")
            elif last is not None and cooldown > 0 and last + cooldown * 60 - now > 0:
                assert not ok and "re-entry waits" in why and until == last + cooldown * 60
            else:
                assert ok and why.startswith(f"{n} earlier entr") and until is None


def test_entries_right_at_the_bound():
    """Entries whose low is the bound itself, or a float either side of it, for widths from subnormal to huge."""
    from core.exits.reentry_index import _below

    n = 0
    for w in (5e-324, 3e-320, 1e-300, 1e-12, 0.37, 5.0, 1e6, 1e300):
        for low in (0.0, -0.0, 1e-310, 1.08, 2000.0, -2000.0, 1e16, -1e200):
            b = _below(low, w)
            if not math.isfinite(b):
                continue
            lows = [np.nextafter(b, -math.inf), b, np.nextafter(b, math.inf), low - w, low - 0.5 * w]
            entries = [RangeEntry("X", float(x) + w, float(x), 0.0, float(j)) for j, x in enumerate(lows)]
            for h in (low + w, low + 2 * w, low + 0.5 * w, low + 1e-9 * w):
                if h > low:
                    assert _check(entries, [("X", h, low)], step=1)
                    n += 1
    assert n > 100


def test_same_range_equals_its_min_max_formula():
    """`same_range` spells its min/max as the builtins pick them: the same answer on real-looking,
    touching, NaN, infinite, signed-zero, int and numpy edges."""
    def by_builtins(a_high, a_low, b_high, b_low):
        overlap = min(a_high, b_high) - max(a_low, b_low)
        width = max(min(a_high - a_low, b_high - b_low), 1e-12)
        return overlap / width >= 0.5

    rnd = random.Random(13)
    special = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-12, 5e-324, 1e308, 2, np.float64(2000.5), 1999.25]
    n = 0
    for _ in range(20000):
        lo = rnd.uniform(-10, 10)
        edges = [lo + rnd.uniform(0, 5), lo, lo + rnd.uniform(-5, 5), lo + rnd.uniform(-8, 3)]
        for k in range(4):
            if rnd.random() < 0.15:
                edges[k] = rnd.choice(special)
        if rnd.random() < 0.1:  # equal and touching edges
            edges[rnd.randrange(4)] = edges[rnd.randrange(4)]
        with np.errstate(all="ignore"):  # a numpy edge may overflow, in both alike
            assert repr(same_range(*edges)) == repr(by_builtins(*edges)), edges
        n += 1
    assert n == 20000
