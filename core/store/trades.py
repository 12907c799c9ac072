"""Active trades (what the monitor watches) and closed-trade metrics.

Active trades are updated by the monitor (asyncio) and by execution/close paths that may run on
worker threads, so an update must never overwrite a concurrent one. Two ways to update:
- `update(ticket, fn)`: read → fn → write inside one BEGIN IMMEDIATE transaction. No other writer
  can interleave, so nothing is lost; `fn` must be quick and must not do I/O.
- `save(trade)`: optimistic compare-and-set on `trade.version`, for callers that hold a copy across
  an await (e.g. while a broker call is in flight). Raises `StaleTradeError` if someone else wrote
  in between; the caller re-reads and re-applies.
Either way the stored `version` goes up by one per write.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable, Container

from core.domain.models import ActiveTrade, ClosedTrade, RangeStructure
from core.store.db import Database

_FIELDS = list(ActiveTrade.model_fields)
# A trade's JSON is its JSON without the range with the range's own JSON put back before the field that
# follows it. The first `,"exit_manager_state":` of that text is the field's key: the fields before it are
# scalars, and inside a JSON string a quote is always escaped, so `,"` there opens a key. Only while the
# fields stand in that order (tests/test_store_trade_json.py checks the scalars and the bytes).
_SPLICE = _FIELDS[_FIELDS.index("range_data") + 1:][:1] == ["exit_manager_state"]
# a set, not a frozenset: pydantic 2.14 takes a set (or dict) `exclude` as it is but converts a frozenset on every
# dump (~1.5 us of a ~3 us dump). Never mutated.
_WITHOUT_RANGE = {"range_data"}
_RANGE_KEY = ',"range_data":'
_AFTER_RANGE = ',"exit_manager_state":'
_RANGE_MEMO_MAX = 4096
_CLOSED_ALREADY = "(SELECT 1 FROM closed_trades WHERE ticket=?)"
_REMOVE_CLOSING = f"DELETE FROM active_trades WHERE ticket=? RETURNING {_CLOSED_ALREADY}"
_REMOVE_CLOSING_DATA = f"DELETE FROM active_trades WHERE ticket=? RETURNING data, {_CLOSED_ALREADY}"


class StaleTradeError(RuntimeError):
    """`save()` lost an optimistic race: the stored version is newer than the caller's copy."""

    def __init__(self, ticket: int, expected: int, actual: int | None):
        super().__init__(f"trade {ticket}: expected version {expected}, store has {actual}")
        self.ticket = ticket
        self.expected = expected
        self.actual = actual


class DuplicateTradeError(ValueError):
    pass


class ActiveTradeRepo:
    def __init__(self, db: Database):
        self._db = db
        # ticket -> (its range object, that range's JSON): the monitor saves a trade every few cycles
        # (MFE/MAE), and its range (about 2/3 of the text) is the same object every time: copies of a
        # trade share it, and no code changes a range in place (a new range is a new object)
        self._range_json: dict[int, tuple[object, str]] = {}

    def to_json(self, trade: ActiveTrade) -> str:
        """`trade.to_json()`, byte for byte, with the range's JSON reused while the trade keeps the same
        range object."""
        rng = trade.range_data
        if rng is None or not _SPLICE or type(trade) is not ActiveTrade or type(rng) is not RangeStructure:
            return trade.to_json()
        hit = self._range_json.get(trade.ticket)
        if hit is not None and hit[0] is rng:
            frag = hit[1]
        else:
            if len(self._range_json) >= _RANGE_MEMO_MAX:
                self._range_json.clear()
            frag = rng.model_dump_json()
            self._range_json[trade.ticket] = (rng, frag)
        text = trade.model_dump_json(exclude=_WITHOUT_RANGE)
        i = text.find(_AFTER_RANGE)
        return f"{text[:i]}{_RANGE_KEY}{frag}{text[i:]}"  # one new string, not three

    def add(self, trade: ActiveTrade) -> ActiveTrade:
        """Register a new trade (version starts at 0). Raises DuplicateTradeError if the ticket exists."""
        return self.add_copy(trade.model_copy(update={"version": 0}))

    def add_copy(self, trade: ActiveTrade) -> ActiveTrade:
        """`add` for a private copy the caller made with version 0 (`Store.record_open` copies the trade
        anyway to merge its metadata: a second copy only to set the version cost as much again)."""
        try:  # one statement: the primary key is the duplicate check
            self._db.write(
                "INSERT INTO active_trades(ticket, proposal_id, symbol, strategy, state, magic, version, entry_time,"
                " data) VALUES (?,?,?,?,?,?,?,?,?)",
                (trade.ticket, trade.proposal_id, trade.symbol, trade.strategy, trade.exit_manager_state,
                 trade.magic, trade.version, trade.entry_time, self.to_json(trade)),
            )
        except sqlite3.IntegrityError as e:
            if getattr(e, "sqlite_errorname", "") != "SQLITE_CONSTRAINT_PRIMARYKEY":
                raise
            raise DuplicateTradeError(f"trade {trade.ticket} is already registered") from None
        return trade

    def get(self, ticket: int) -> ActiveTrade | None:
        row = self._db.conn.execute("SELECT data FROM active_trades WHERE ticket=?", (ticket,)).fetchone()
        return ActiveTrade.from_json(row["data"]) if row else None

    def all(self, symbol: str | None = None) -> list[ActiveTrade]:
        if symbol is None:
            rows = self._db.conn.execute("SELECT data FROM active_trades ORDER BY ticket").fetchall()
        else:
            rows = self._db.conn.execute(
                "SELECT data FROM active_trades WHERE symbol=? ORDER BY ticket", (symbol,)
            ).fetchall()
        return [ActiveTrade.from_json(r["data"]) for r in rows]

    def tickets(self) -> set[int]:
        return {r[0] for r in self._db.conn.execute("SELECT ticket FROM active_trades")}

    def count(self) -> int:
        return int(self._db.conn.execute("SELECT COUNT(*) FROM active_trades").fetchone()[0])

    def _write(self, trade: ActiveTrade, expected_version: int) -> bool:
        cur = self._db.write(
            "UPDATE active_trades SET proposal_id=?, symbol=?, strategy=?, state=?, magic=?, version=?,"
            " entry_time=?, data=? WHERE ticket=? AND version=?",
            (trade.proposal_id, trade.symbol, trade.strategy, trade.exit_manager_state, trade.magic,
             trade.version, trade.entry_time, self.to_json(trade), trade.ticket, expected_version),
        )
        return cur.rowcount == 1

    def update(self, ticket: int, fn: Callable[[ActiveTrade], ActiveTrade | None]) -> ActiveTrade | None:
        """Atomically apply `fn` to the stored trade and save it; returns the saved trade.

        `fn` gets a private copy and may mutate it in place (return None) or return a new one.
        Returns None if the ticket is not registered (fn is not called). Joins an enclosing
        transaction.
        """
        with self._db.transaction() as c:
            row = c.execute("SELECT version, data FROM active_trades WHERE ticket=?", (ticket,)).fetchone()
            if row is None:
                return None
            current = ActiveTrade.from_json(row["data"])
            new = fn(current)
            new = current if new is None else new
            if new.ticket != ticket:
                raise ValueError("update() must not change a trade's ticket")
            new = ActiveTrade.model_validate({**new.model_dump(), "version": int(row["version"]) + 1})
            if not self._write(new, int(row["version"])):  # pragma: no cover - impossible under the lock
                raise StaleTradeError(ticket, int(row["version"]), None)
            return new

    def save(self, trade: ActiveTrade) -> ActiveTrade:
        """Optimistic write: succeeds only if the store still has `trade.version`; returns version+1."""
        return self.save_next(trade.model_copy(update={"version": trade.version + 1}))

    def save_next(self, new: ActiveTrade) -> ActiveTrade:
        """`save` for a trade whose version is already the next one (the stored must be `new.version - 1`):
        the exit manager builds that copy anyway, and a copy of a trade with its range is not free."""
        expected = new.version - 1
        # the conditional UPDATE is the compare-and-set, one statement (no BEGIN/SAVEPOINT around it)
        with self._db.write_lock:
            if not self._write(new, expected):
                row = self._db.conn.execute("SELECT version FROM active_trades WHERE ticket=?",
                                            (new.ticket,)).fetchone()
                raise StaleTradeError(new.ticket, expected, int(row[0]) if row else None)
        return new

    def remove(self, ticket: int) -> ActiveTrade | None:
        """Unregister a trade; returns what was stored (None if it was not there)."""
        text = self.remove_json(ticket)
        return None if text is None else ActiveTrade.from_json(text)

    def remove_json(self, ticket: int) -> str | None:
        """`remove`, returning the stored JSON unparsed (a close that has the trade's metadata needs no parse)."""
        self._range_json.pop(ticket, None)
        row = self._db.write("DELETE FROM active_trades WHERE ticket=? RETURNING data", (ticket,)).fetchone()
        return None if row is None else row["data"]

    def remove_closing(self, ticket: int, want_data: bool) -> tuple[str | None, bool] | None:
        """`remove_json` for a close, which asks next whether `closed_trades` has the ticket: the DELETE answers
        that too (a subquery in its RETURNING, on another table the DELETE does not touch, so the same answer as
        a SELECT right after it). Returns (the stored JSON if `want_data` else None, closed already?), or None
        if no row was there: nothing is returned then, and the caller asks `ClosedTradeRepo.has` itself."""
        self._range_json.pop(ticket, None)
        row = self._db.write(_REMOVE_CLOSING_DATA if want_data else _REMOVE_CLOSING, (ticket, ticket)).fetchone()
        if row is None:
            return None
        return (row[0], row[1] is not None) if want_data else (None, row[0] is not None)


class ClosedTradeRepo:
    def __init__(self, db: Database):
        self._db = db

    def add(self, trade: ClosedTrade) -> ClosedTrade:
        self._db.write(
            "INSERT INTO closed_trades(ticket, proposal_id, symbol, strategy, entry_time, exit_time, pnl,"
            " r_multiple, exit_reason, data) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (trade.ticket, trade.proposal_id, trade.symbol, trade.strategy, trade.entry_time, trade.exit_time,
             trade.pnl, trade.r_multiple, trade.exit_reason, trade.to_json()),
        )
        return trade

    def get(self, ticket: int) -> ClosedTrade | None:
        row = self._db.conn.execute("SELECT data FROM closed_trades WHERE ticket=?", (ticket,)).fetchone()
        return ClosedTrade.from_json(row["data"]) if row else None

    def has(self, ticket: int) -> bool:
        """Journalled already? (no JSON decode: the deal-history scan asks this for every position it sees)"""
        return self._db.conn.execute("SELECT 1 FROM closed_trades WHERE ticket=?", (ticket,)).fetchone() is not None

    def recent(self, n: int = 20) -> list[ClosedTrade]:
        """The last `n` closed trades, newest first."""
        rows = self._db.conn.execute(
            "SELECT data FROM closed_trades ORDER BY exit_time DESC, ticket DESC LIMIT ?", (int(n),)
        ).fetchall()
        return [ClosedTrade.from_json(r["data"]) for r in rows]

    def since(self, ts: float, symbol: str | None = None, skip: Container[int] = ()) -> list[ClosedTrade]:
        """Closed trades with exit_time ≥ ts, oldest first (what metrics windows want), except the tickets in
        `skip` (a reader that has them already: they are not parsed again)."""
        sql, args = "SELECT ticket, data FROM closed_trades WHERE exit_time >= ?", [ts]
        if symbol is not None:
            sql += " AND symbol=?"
            args.append(symbol)
        rows = self._db.conn.execute(sql + " ORDER BY exit_time, ticket", args).fetchall()
        return [ClosedTrade.from_json(r[1]) for r in rows if r[0] not in skip]

    def net_pnl_before(self, ts: float) -> float:
        """Σ net P&L (commission always a cost, as in core.store.metrics) of trades closed before `ts`: what a
        metrics window's equity starts from, on top of the account's starting balance."""
        row = self._db.conn.execute(
            "SELECT COALESCE(SUM(pnl - ABS(COALESCE(json_extract(data, '$.commission'), 0))), 0) "
            "FROM closed_trades WHERE exit_time < ?", (ts,)).fetchone()
        return float(row[0])

    def count(self) -> int:
        return int(self._db.conn.execute("SELECT COUNT(*) FROM closed_trades").fetchone()[0])
