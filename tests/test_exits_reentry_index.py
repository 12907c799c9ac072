"""`check_reentry_allowed` reads only the entries that can be the asked range (an index by range low);
its answers must be exactly those of reading every entry ever taken, which this test recomputes from
its own record of the entries, on ranges cut from real XAUUSD bars plus degenerate edges."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import lifecycle_helpers as k

from core.domain.clock import FixedClock
from core.domain.models import ActiveTrade, ClosedTrade, Direction
from core.exits.manager import RangeScalpingExitManager

T0 = 1_750_000_000.0
COOLDOWN, CAP = 30.0, 2


@dataclass(frozen=True)
class Edges:
    range_high: float
    range_low: float


def _same(a_high, a_low, b_high, b_low) -> bool:
    overlap = min(a_high, b_high) - max(a_low, b_low)
    width = max(min(a_high - a_low, b_high - b_low), 1e-12)
    return overlap / width >= 0.5


def _reference(book: list[dict], symbol: str, rng: Edges, now: float) -> tuple[bool, int, float | None]:
    """(allowed, entries on this range, last exit) by reading every entry, as the rule is specified."""
    same = [e for e in book if e["symbol"] == symbol and _same(e["high"], e["low"], rng.range_high, rng.range_low)]
    if len(same) > CAP:
        return False, len(same), None
    exits = [e["exit"] for e in same if e["exit"] is not None]
    if exits and max(exits) + COOLDOWN * 60 - now > 0:
        return False, len(same), max(exits)
    return True, len(same), None


def _closed(ticket: int, e: dict) -> ClosedTrade:
    return ClosedTrade(ticket=ticket, symbol=e["symbol"], strategy="bb_fade", direction=Direction.LONG, volume=0.01,
                       entry_price=1, exit_price=1, initial_sl=0.5, tp=2, entry_time=e["entry"],
                       exit_time=e["exit"], pnl=0, r_multiple=0, exit_reason="x",
                       metadata={"range_high": e["high"], "range_low": e["low"]})


def test_indexed_reentry_rule_answers_exactly_as_a_full_scan():
    bars = k.m5(k.config())
    rnd = random.Random(7)
    clock = FixedClock(T0)
    mgr = RangeScalpingExitManager(clock=clock)
    book: list[dict] = []
    open_tickets: dict[int, dict] = {}
    odd = [Edges(math.nan, 1.0), Edges(math.inf, 1800.0), Edges(2000.0, -math.inf), Edges(1900.0, 1900.0),
           Edges(1800.0, 1900.0)]

    def real_range(near: int) -> Edges:
        s = max(0, min(len(bars) - 300, near + rnd.randint(-400, 400)))
        w = bars[s:s + rnd.randint(6, 288)]
        return Edges(float(w["high"].max()), float(w["low"].min()))

    decisions = {True: 0, False: 0}
    memo: dict = {}  # what a caller of reentry_blocked_until may remember (core.backtest.live.LiveParts.reentry_open)
    memo_version, remembered = -1, 0
    at = 1000
    for step in range(400):
        now = T0 + step * 600.0
        clock.set(now)
        at += rnd.randint(0, 120)
        asks = [real_range(at) for _ in range(6)] + odd
        for sym in ("XAUUSDc", "EURUSDc"):
            for rng in asks:
                ok, why = mgr.check_reentry_allowed(sym, rng, now, COOLDOWN, CAP)
                want, n, last = _reference(book, sym, rng, now)
                assert ok is want, (step, sym, rng, why)
                until = mgr.reentry_blocked_until(sym, rng, now, COOLDOWN, CAP)
                assert (until is None) is want
                if not want:
                    assert until == (math.inf if last is None else last + COOLDOWN * 60) and until > now
                if mgr.entries_version != memo_version:
                    memo.clear()
                    memo_version = mgr.entries_version
                key = (sym, rng.range_high, rng.range_low)
                if key in memo:  # a remembered verdict still holds while the entries are unchanged
                    assert (now >= memo[key]) is want, (step, sym, rng)
                    remembered += 1
                else:
                    memo[key] = -math.inf if until is None else until
                decisions[ok] += 1
                if not want and last is None:
                    assert f"traded {n} time(s)" in why
                if want:
                    assert why.startswith(f"{n} earlier entr")
        # take a trade on one of the asked ranges (sometimes a degenerate one), close some open ones
        pick = rnd.choice(asks[:6] + odd[-2:] if step % 25 else odd)
        sym = "XAUUSDc" if rnd.random() < 0.8 else "EURUSDc"
        ticket = step + 1
        e = {"symbol": sym, "high": pick.range_high, "low": pick.range_low, "entry": now, "exit": None}
        if math.isfinite(pick.range_high) and math.isfinite(pick.range_low) and pick.range_high > pick.range_low:
            rs = k.range_of(sym, bars[:2], atr=1.0).model_copy(
                update={"range_high": pick.range_high, "range_low": pick.range_low})
            mgr.register_trade(ActiveTrade(ticket=ticket, symbol=sym, strategy="bb_fade", direction=Direction.LONG,
                                           entry_price=100.0, sl=99.0, tp=102.0, initial_sl=99.0, volume=0.01,
                                           entry_time=now, range_data=rs, metadata={}))
            book.append(e)
            open_tickets[ticket] = e
        for t in [t for t in open_tickets if rnd.random() < 0.5]:
            x = open_tickets.pop(t)
            x["exit"] = now + rnd.choice([60.0, 300.0])
            mgr.unregister_trade(t, exit_time=x["exit"])
        if step % 97 == 96:  # a restart: the history comes back through the journal, degenerate edges too
            for t, x in list(open_tickets.items()):
                x["exit"] = now
                mgr.unregister_trade(t, exit_time=now)
            open_tickets.clear()
            book.extend({"symbol": "XAUUSDc", "high": o.range_high, "low": o.range_low, "entry": now,
                         "exit": now} for o in odd)
            mgr.load([], [_closed(i + 1, x) for i, x in enumerate(book)])
    assert decisions[True] > 100 and decisions[False] > 100  # both answers were exercised
    assert remembered > 100
