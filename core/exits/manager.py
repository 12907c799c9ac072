"""RangeScalpingExitManager: the registry of open range scalps and the decisions about their exits.

Why one lock around both memory and the store write: the monitor (asyncio), the chat commands and
worker threads (`asyncio.to_thread` broker calls) all mutate trades. Each mutation is a
read-modify-write applied under a `threading.Lock` (safe from any thread or coroutine, never held
across an `await`), bumps the trade's `version`, and is persisted before the in-memory copy is replaced.
So two callers can never both start from the same version, and memory never runs ahead of the store.
Exits are judged by the pure functions in `core.exits.rules`; orders live in `core.exits.executor`.
"""
from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from core.domain.copies import copy_with
from core.domain.models import ActiveTrade, ClosedTrade, ExitSignal, RangeStructure
from core.exits import rules
from core.exits.reentry_index import EntryIndex, RangeEntry, same_range

log = logging.getLogger(__name__)

Update = dict | Callable[[ActiveTrade], dict]
# (event, data) journalled in the same transaction as the state change, e.g. ("sl_moved", {...})
JournalNote = tuple[str, dict]

RANGE_BROKEN = "range_invalidated"  # the exit reason after which a range is not traded again


class TradeNotRegistered(KeyError):
    pass


class RangeScalpingExitManager:
    def __init__(self, store=None, clock=None) -> None:
        """`store` is a `core.store.Store` (None keeps state in memory only: benches, unit tests)."""
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._trades: dict[int, ActiveTrade] = {}
        self._entries: list[RangeEntry] = []
        self._entries_version = 0
        # (symbol, entry time) -> positions in `_entries` of the still-open entries, oldest first: a close
        # finds its entry without reading every trade ever taken
        self._open_at: dict[tuple[str, float], list[int]] = {}
        self._facts: dict[tuple, tuple] = {}  # `_range_facts` per (symbol, high, low) while _facts_version stands
        self._facts_version = -1
        # moves whenever a registered trade may have a new SL (load, register, an update to an SL != the old one)
        self.stops_version = 0

    # ---- registry ---------------------------------------------------------------------------
    def load(self, trades: Iterable[ActiveTrade], closed: Iterable[ClosedTrade] = ()) -> None:
        """Fill memory from the store at start-up (no writes: the store is already the truth)."""
        with self._lock:
            self._trades = {t.ticket: t for t in trades}
            self._entries = [self._entry_of_closed(c) for c in closed if c.metadata.get("range_high") is not None]
            self._entries += [self._entry_of_open(t) for t in self._trades.values() if t.range_data]
            self._entries_version += 1
            self.stops_version += 1
            self._open_at = {}
            for i, e in enumerate(self._entries):
                if e.exit_time is None:
                    self._open_at.setdefault((e.symbol, e.entry_time), []).append(i)

    def register_trade(self, trade: ActiveTrade, *, persisted: bool = False) -> ActiveTrade:
        """Start monitoring `trade`. `persisted=True` when the caller already wrote it in its own transaction."""
        with self._lock:
            now = self._now()
            trade = trade.model_copy(update={"last_state_change": now, "last_range_check": trade.last_range_check or now})
            if not persisted and self._store is not None:
                trade = self._store.trades.add(trade)
            self._trades[trade.ticket] = trade
            self.stops_version += 1
            if trade.range_data:
                self._entries.append(self._entry_of_open(trade))
                self._entries_version += 1
                self._open_at.setdefault((trade.symbol, trade.entry_time), []).append(len(self._entries) - 1)
        log.info("registered range scalp %s %s %s", trade.ticket, trade.symbol, trade.strategy)
        return trade

    def unregister_trade(self, ticket: int, *, persisted: bool = False, exit_time: float | None = None,
                         exit_reason: str | None = None) -> bool:
        with self._lock:
            trade = self._trades.get(ticket)
            if trade is None:
                log.warning("unregister of unknown trade %s", ticket)
                return False
            if not persisted and self._store is not None:
                self._store.trades.remove(ticket)
            del self._trades[ticket]
            self._close_entry(trade, exit_time if exit_time is not None else self._now(), exit_reason == RANGE_BROKEN)
        return True

    def update_trade_state(self, ticket: int, updates: Update, journal: JournalNote | None = None) -> ActiveTrade:
        """Apply `updates` (a dict, or a function of the current trade returning one) atomically.

        A function lets callers express read-modify-write (e.g. "MFE = max(MFE, x)") without a lost
        update: it is evaluated under the lock on the latest version. `journal` is written in the
        same store transaction as the new state.
        """
        notes = {ticket: journal} if journal else None
        return self.update_many({ticket: updates}, notes)[ticket]

    def update_many(
        self, updates: dict[int, Update], journal: dict[int, JournalNote] | None = None
    ) -> dict[int, ActiveTrade]:
        """Several trades' updates in one store transaction (the monitor's once-per-cycle save)."""
        with self._lock:
            now = self._now()
            new: dict[int, ActiveTrade] = {}
            for ticket, upd in updates.items():
                cur = self._trades.get(ticket)
                if cur is None:
                    raise TradeNotRegistered(ticket)
                fields = {k: v for k, v in (upd(cur) if callable(upd) else upd).items() if k not in ("ticket", "version")}
                new[ticket] = copy_with(cur, {**fields, "version": cur.version + 1, "last_state_change": now})
            if new and self._store is not None:
                self._write(new, journal or {})
            self.stops_version += any(t.sl != self._trades[k].sl for k, t in new.items())
            self._trades.update(new)
            return new

    def sync_stops(self, ticket: int, sl: float, tp: float) -> ActiveTrade:
        """Adopt the broker's SL/TP: the broker-side stop is what protects the money.

        A stop at or past the entry is a breakeven (a move sent but not saved before a crash, or made in
        MetaTrader): it is marked so, or /status and the journal would say the stop was never moved."""
        cur = self.get(ticket)
        note = (("sl_moved", {"from": cur.sl, "to": sl, "reason": "synced_from_broker"})
                if cur is not None and abs(cur.sl - sl) > 1e-12 else None)

        def fn(t: ActiveTrade) -> dict:
            protective = sl > 0 and (sl - t.entry_price) * t.direction.sign >= 0
            return {"sl": sl, "tp": tp, **({"breakeven_moved": True} if protective else {})}
        return self.update_trade_state(ticket, fn, journal=note)

    def get(self, ticket: int) -> ActiveTrade | None:
        with self._lock:
            return self._trades.get(ticket)

    def active_trades(self) -> list[ActiveTrade]:
        with self._lock:
            return list(self._trades.values())

    def open_on_range(self, symbol: str, rng: RangeStructure | None,
                      pending: Iterable[tuple[str, RangeStructure | None]] = ()) -> list[str]:
        """What is open on this range right now: '#ticket' per active trade on it, 'an order on its way' per
        `pending` entry. For `max_positions_per_range`: two strategies off one card are one range."""
        if rng is None:
            return []
        out = [f"#{t.ticket}" for t in self.active_trades()
               if t.symbol == symbol and t.range_data is not None
               and same_range(t.range_data.range_high, t.range_data.range_low, rng.range_high, rng.range_low)]
        out += ["an order on its way" for sym, r in pending if sym == symbol and r is not None
                and same_range(r.range_high, r.range_low, rng.range_high, rng.range_low)]
        return out

    def range_scalp_tickets(self) -> frozenset[int]:
        """Tickets this manager owns: any other exit manager must skip them."""
        with self._lock:
            return frozenset(self._trades)

    def __len__(self) -> int:
        return len(self._trades)

    # ---- exits (the seed's method names; the rules themselves are pure functions in core.exits.rules) ----
    @staticmethod
    def check_range_invalidation_during_trade(trade: ActiveTrade, candles, tcfg, timeframe_seconds: int = 0):
        ri = tcfg.range_invalidation
        return rules.check_range_invalidation_during_trade(
            trade, candles, ri.candles_outside_range, ri.outside_buffer_atr, timeframe_seconds)

    @staticmethod
    def check_early_exit_conditions(trade: ActiveTrade, tick, candles, now: float, tcfg, info,
                                    timeframe_seconds: int = 0) -> ExitSignal | None:
        """The most urgent exit signal for `trade` now (None if it should simply stay open)."""
        sigs = rules.check_early_exit_conditions(trade, tick, candles, now, tcfg, info.point, info.digits,
                                                 info.trade_stops_level, timeframe_seconds)
        return sigs[0] if sigs else None

    @staticmethod
    def calculate_breakeven_stop(trade: ActiveTrade, tick, tcfg, info) -> float | None:
        ex = tcfg.exits
        return rules.calculate_breakeven_stop(trade, tick, info.point, ex.breakeven_trigger_r,
                                              ex.breakeven_cost_points, info.trade_stops_level, info.digits)

    @staticmethod
    def order_signals(signals: Iterable[ExitSignal]) -> list[ExitSignal]:
        """CRITICAL → HIGH → MEDIUM → LOW; within a priority, closes before stop moves, then by ticket."""
        return sorted(signals, key=lambda s: (s.priority.rank, s.action != "close", s.ticket))

    # ---- re-entry ---------------------------------------------------------------------------
    @property
    def entries_version(self) -> int:
        """Moves whenever the entries the re-entry rule reads change (a trade taken, closed or reloaded)."""
        return self._entries_version

    def check_reentry_allowed(
        self, symbol: str, rng: RangeStructure | None, now: float, cooldown_minutes: float, max_reentries: int,
        pending: Iterable[tuple[str, RangeStructure | None]] = (),
    ) -> tuple[bool, str]:
        """May we enter this range again? A cooldown after the last exit, and a cap on re-entries.

        The first entry on a range is not a re-entry, so at most `1 + max_reentries` trades are taken
        on one range; an open trade on it counts too, and so does each `(symbol, range)` in `pending`
        (orders on their way to the broker, not registered yet). A range that broke during a trade (closed
        by range invalidation) is not entered again: the market accepted prices outside it.
        """
        if rng is None:
            return True, "no range to compare"
        v = self._reentry_verdict(symbol, rng, now, cooldown_minutes, max_reentries, pending)
        kind = v[0]
        if kind == "broken":
            at = datetime.fromtimestamp(v[1], UTC).strftime("%H:%M UTC")
            return False, (f"this {symbol} range broke during an earlier trade (closed at {at} on a range "
                           "invalidation); a broken range is not traded again")
        if kind == "cap":
            n = v[1]
            return False, (
                f"this {symbol} range has already been traded {n} time(s); the limit is "
                f"{max_reentries} re-entr{'y' if max_reentries == 1 else 'ies'} per range"
            )
        if kind == "cooldown":
            last, wait = v[1], v[2] - now
            at = datetime.fromtimestamp(last, UTC).strftime("%H:%M UTC")
            return False, (
                f"the last trade on this {symbol} range closed at {at}; re-entry waits {cooldown_minutes:g} "
                f"minutes, so {wait / 60:.0f} more minute(s)"
            )
        n = v[1]
        return True, f"{n} earlier entr{'y' if n == 1 else 'ies'} on this range"

    def reentry_blocked_until(self, symbol: str, rng, now: float, cooldown_minutes: float,
                              max_reentries: int) -> float | None:
        """The rule of `check_reentry_allowed` (no pending orders) without its wording: None when allowed
        now, else until when the refusal holds while `entries_version` stays the same: the end of the
        cooldown, or `math.inf` (the cap or a broken range). A caller asking again and again about the
        same range (the backtest's range screen) can remember a refusal instead."""
        v = self._reentry_verdict(symbol, rng, now, cooldown_minutes, max_reentries, ())
        if v[0] == "ok":
            return None
        return v[2] if v[0] == "cooldown" else math.inf

    def _reentry_verdict(self, symbol: str, rng, now: float, cooldown_minutes: float, max_reentries: int,
                         pending: Iterable[tuple[str, RangeStructure | None]]) -> tuple:
        """("broken", exit time) | ("cap", n) | ("cooldown", last exit, until) | ("ok", earlier entries)."""
        high, low = rng.range_high, rng.range_low
        same_n, broken_at, last = self._range_facts(symbol, high, low)
        n = same_n
        for sym, r in pending:  # a loop, not sum() of a generator: most asks have no pending order
            if sym == symbol and r is not None and same_range(r.range_high, r.range_low, high, low):
                n += 1
        if broken_at is not None:
            return ("broken", broken_at)
        if n > max_reentries:
            return ("cap", n)
        if last is not None and cooldown_minutes > 0:
            until = last + cooldown_minutes * 60
            if until - now > 0:
                return ("cooldown", last, until)
        return ("ok", same_n)

    def _range_facts(self, symbol: str, high: float, low: float) -> tuple[int, float | None, float | None]:
        """(entries on this range, last exit of a broken one, last exit), from the entries alone: kept per
        asked edges while `entries_version` stands (it moves with every change of the entries), since one
        entry asks about its range two or three times (re-entry check, proposal, approval)."""
        with self._lock:
            memo = self._facts
            if self._facts_version != self._entries_version or len(memo) >= 4096:  # bounded: a long flat spell
                memo.clear()
                self._facts_version = self._entries_version
            key = (symbol, high, low)
            hit = memo.get(key)
            if hit is not None:
                return hit
            index = self.__dict__.get("_reentry_index")
            if index is None or index.source is not self._entries:
                index = self._reentry_index = EntryIndex(self._entries)
            hit = memo[key] = index.facts(symbol, high, low)
            return hit

    def _write(self, new: dict[int, ActiveTrade], journal: dict[int, JournalNote]) -> None:
        st = self._store
        if len(new) == 1 and not journal:
            # one trade, no journal row: the store's save is one compare-and-set statement, atomic alone
            # (the monitor's MFE/MAE save, most cycles that write at all)
            st.trades.save_next(next(iter(new.values())))
            return
        from core.store.journal import TradeMetadata

        with st.transaction():
            for ticket, t in new.items():
                st.trades.save_next(t)
                note = journal.get(ticket)
                if note:  # `add`: the row `append` writes, without the entry nothing here reads
                    st.journal.add(
                        note[0], ticket=ticket, proposal_id=t.proposal_id, symbol=t.symbol,
                        metadata=TradeMetadata.from_trade(t), data=note[1],
                    )

    # ---- helpers ----------------------------------------------------------------------------
    def _now(self) -> float:
        return float(self._clock.now()) if self._clock is not None else 0.0

    @staticmethod
    def _entry_of_open(t: ActiveTrade) -> RangeEntry:
        r = t.range_data
        return RangeEntry(t.symbol, r.range_high, r.range_low, t.entry_time, None)

    @staticmethod
    def _entry_of_closed(c: ClosedTrade) -> RangeEntry:
        m = c.metadata
        return RangeEntry(c.symbol, float(m["range_high"]), float(m["range_low"]), c.entry_time, c.exit_time,
                          c.exit_reason == RANGE_BROKEN)

    def _close_entry(self, trade: ActiveTrade, exit_time: float, broken: bool = False) -> None:
        """Mark the oldest open entry of this trade (same symbol and entry time) closed."""
        at = self._open_at.get((trade.symbol, trade.entry_time))
        if not at or trade.entry_time != trade.entry_time:  # none open (or a NaN time, which matches nothing)
            return
        i = at.pop(0)
        if not at:
            del self._open_at[(trade.symbol, trade.entry_time)]
        e = self._entries[i]
        self._entries[i] = RangeEntry(e.symbol, e.range_high, e.range_low, e.entry_time, exit_time, broken)
        self._entries_version += 1

