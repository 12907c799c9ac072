"""The paper account's own SQLite file: positions, orders, deals, balance and the replay position.

It is deliberately *not* the project's store. A real broker is a separate system the project cannot
commit to atomically; keeping the paper account in its own file makes the paper broker behave the
same way, so exactly-once and recovery logic is exercised for real in paper mode. Each order is one
transaction (WAL, synchronous=FULL): after a crash an order is either fully booked or absent.
"""
from __future__ import annotations

import sqlite3
import threading
from bisect import insort
from operator import attrgetter
from pathlib import Path
from typing import Literal, get_args, get_origin

from core.brokers.base import Deal, Position
from core.domain.exceptions import UserFacingError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS positions (
    ticket INTEGER PRIMARY KEY, symbol TEXT NOT NULL, type TEXT NOT NULL, volume REAL NOT NULL,
    price_open REAL NOT NULL, sl REAL NOT NULL, tp REAL NOT NULL, magic INTEGER NOT NULL,
    comment TEXT NOT NULL, time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    ticket INTEGER PRIMARY KEY, symbol TEXT NOT NULL, type TEXT NOT NULL, volume REAL NOT NULL,
    price REAL NOT NULL, sl REAL NOT NULL, tp REAL NOT NULL, magic INTEGER NOT NULL,
    comment TEXT NOT NULL, time REAL NOT NULL, position_id INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deals (
    ticket INTEGER PRIMARY KEY, "order" INTEGER NOT NULL, position_id INTEGER NOT NULL,
    symbol TEXT NOT NULL, type TEXT NOT NULL, entry TEXT NOT NULL, volume REAL NOT NULL,
    price REAL NOT NULL, profit REAL NOT NULL, commission REAL NOT NULL, swap REAL NOT NULL,
    magic INTEGER NOT NULL, comment TEXT NOT NULL, time REAL NOT NULL, reason TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS deals_position ON deals(position_id);
CREATE INDEX IF NOT EXISTS deals_time ON deals(time);
"""

_POS_COLS = ("ticket", "symbol", "type", "volume", "price_open", "sl", "tp", "magic", "comment", "time")
_POS_SET = frozenset(_POS_COLS)
_DEAL_COLS = ("ticket", "order", "position_id", "symbol", "type", "entry", "volume", "price", "profit",
              "commission", "swap", "magic", "comment", "time", "reason")
# a model's column values in one C call (a generator of getattr per column cost several times as much)
_pos_values = attrgetter(*_POS_COLS)
_deal_values = attrgetter(*_DEAL_COLS)
_INSERT_POSITION = f"INSERT INTO positions ({','.join(_POS_COLS)}) VALUES ({','.join('?' * len(_POS_COLS))})"
_INSERT_DEAL = ("INSERT INTO deals (" + ",".join(f'"{c}"' for c in _DEAL_COLS) + ") VALUES ("
                + ",".join("?" * len(_DEAL_COLS)) + ")")
_SELECT_DEALS = "SELECT " + ",".join(f'"{c}"' for c in _DEAL_COLS) + " FROM deals"
# each deal column's type as the row reads back (INTEGER, TEXT, REAL), for the deals kept in memory
_DEAL_TYPES = (int, int, int, str, str, str, float, float, float, float, float, int, str, float, str)
_TIME, _TICKET, _POSITION = (_DEAL_COLS.index(c) for c in ("time", "ticket", "position_id"))
# the deal columns a `Deal` restricts to literals (side, entry, reason): position -> the allowed values
_DEAL_LITERALS = tuple((i, frozenset(get_args(Deal.model_fields[c].annotation))) for i, c in enumerate(_DEAL_COLS)
                       if get_origin(Deal.model_fields[c].annotation) is Literal)
_INSERT_ORDER = "INSERT INTO orders VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"


class PaperStoreError(UserFacingError):
    """The paper account's file cannot be opened (the store's own StoreError is the same for moneybot.sqlite)."""


class PaperStore:
    """Thread-safe: one connection guarded by a re-entrant lock (callers use asyncio.to_thread)."""

    def __init__(self, path: str | Path, start_balance: float) -> None:
        self.path = Path(path)
        try:
            self._open(path, start_balance)
        except sqlite3.DatabaseError as e:  # corrupt, truncated, random bytes, a folder: one line, not a traceback
            raise PaperStoreError(
                f"cannot open the paper account {self.path}: {e}. Move the file aside (e.g. rename it to "
                f"{self.path.name}.bad) to start a fresh paper account, or restore it from a backup") from None

    def _open(self, path: str | Path, start_balance: float) -> None:
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)
        self._depth = 0
        self._transaction = _Transaction(self)
        # Open positions and the meta values (balance, next ticket, replay clock), read on every monitor
        # cycle, order and replay step: kept in memory as the committed rows. Valid while no other connection
        # has committed (SQLite's data_version moves only for those; an in-memory database has no other
        # connection at all), and dropped on a rollback, so they never show a write that did not commit.
        self._open_positions: dict[int, Position] | None = None
        # The deals by position, as the rows a SELECT returns (value tuples in time, ticket order), under the
        # same rules: a close reads its position's deals once, and that SELECT was its dearest step
        self._deals_by_pos: dict[int, list[tuple]] | None = None
        self._meta: dict[str, str | None] = {}
        # meta values set inside a transaction, written in one statement just before its COMMIT: an order
        # sets the ticket counter, the balance and the replay clock, four statements otherwise
        self._pending: dict[str, str] = {}
        self._private = str(path) == ":memory:"
        self._version = None if self._private else self._data_version()
        with self.transaction():
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('balance', ?)", (repr(float(start_balance)),))
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('next_ticket', '100001')")

    def close(self) -> None:
        with self.lock:
            self._conn.close()

    def transaction(self) -> _Transaction:
        """One atomic unit; nested calls join the outer transaction."""
        return self._transaction

    # -- what is kept in memory -------------------------------------------------------------------
    def _data_version(self) -> int:
        return self._conn.execute("PRAGMA data_version").fetchone()[0]

    def _forget(self) -> None:
        self._open_positions = None
        self._deals_by_pos = None
        self._meta = {}

    def _fresh(self) -> None:
        """Drop what is kept in memory if another connection has committed since (callers hold the lock).

        Inside a transaction nobody else can commit (BEGIN IMMEDIATE holds the write lock, and it checked
        once right after it began), so the look-up is skipped there."""
        if not self._private and not self._depth:
            version = self._data_version()
            if version != self._version:
                self._forget()
                self._version = version

    # -- meta ---------------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self.lock:
            self._fresh()
            if key in self._pending:  # set in this transaction (kept even if the cache was just dropped)
                return self._pending[key]
            if key not in self._meta:
                row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
                self._meta[key] = row[0] if row else None
            value = self._meta[key]
            return default if value is None else value

    def set_meta(self, key: str, value: str) -> None:
        """Inside a transaction the row is written at its commit (`_write_pending`), else at once."""
        with self.lock:
            self._fresh()
            if self._depth:
                self._pending.pop(key, None)  # rows written in the order of their last set
                self._pending[key] = value
            else:
                self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
            self._meta[key] = value

    def _write_pending(self) -> None:
        """The transaction's meta rows in one statement; the caller commits right after (or rolls back)."""
        pending = self._pending
        if pending:
            self._conn.execute("INSERT OR REPLACE INTO meta VALUES " + ",".join(["(?,?)"] * len(pending)),
                               [x for kv in pending.items() for x in kv])
            pending.clear()

    def balance(self) -> float:
        return float(self.get_meta("balance", "0"))

    def add_to_balance(self, amount: float) -> None:
        with self.transaction():
            self.set_meta("balance", repr(self.balance() + amount))

    def next_ticket(self, n: int = 1) -> int:
        """The first of `n` consecutive new tickets (an order and its deal take two in one write)."""
        with self.transaction():
            t = int(self.get_meta("next_ticket", "100001"))
            self.set_meta("next_ticket", str(t + n))
            return t

    # -- positions ----------------------------------------------------------------------------------
    def insert_position(self, p: Position) -> None:
        with self.lock:
            values = _pos_values(p)
            self._conn.execute(_INSERT_POSITION, values)
            cache = self._cache()
            if cache is not None:
                last = next(reversed(cache), None)
                # as the row reads back: its columns only. A Position that set exactly those fields (its others
                # hold their defaults) is that already, and frozen, so it is kept rather than built again
                cache[p.ticket] = p if type(p) is Position and p.model_fields_set == _POS_SET else Position(
                    **dict(zip(_POS_COLS, values, strict=True)))
                if last is not None and p.ticket < last:  # kept in ticket order, as the SELECT gives them
                    self._open_positions = dict(sorted(cache.items()))

    def update_position(self, ticket: int, **fields: float) -> None:
        cols = ", ".join(f"{k}=?" for k in fields)
        with self.lock:
            self._conn.execute(f"UPDATE positions SET {cols} WHERE ticket=?", (*fields.values(), ticket))
            cache = self._cache()
            if cache is not None and ticket in cache:  # as the row reads back: its columns only
                cache[ticket] = Position(**{**dict(zip(_POS_COLS, _pos_values(cache[ticket]), strict=True)), **fields})

    def delete_position(self, ticket: int) -> None:
        with self.lock:
            self._conn.execute("DELETE FROM positions WHERE ticket=?", (ticket,))
            cache = self._cache()
            if cache is not None:
                cache.pop(ticket, None)

    def _cache(self) -> dict[int, Position] | None:
        """The cached open positions if still valid (callers hold the lock), else None."""
        self._fresh()
        return self._open_positions

    def _all_positions(self) -> dict[int, Position]:
        cache = self._cache()
        if cache is None:
            rows = self._conn.execute("SELECT * FROM positions ORDER BY ticket").fetchall()
            cache = self._open_positions = {r["ticket"]: Position(**dict(r)) for r in rows}
        return cache

    def position(self, ticket: int) -> Position | None:
        with self.lock:
            return self._all_positions().get(ticket)

    def positions(self, symbol: str | None = None, magic: int | None = None) -> list[Position]:
        """In ticket order (the cache is kept in it)."""
        with self.lock:
            cache = self._all_positions()
            if symbol is None and magic is None:
                return list(cache.values())
            return [p for p in cache.values()
                    if (symbol is None or p.symbol == symbol) and (magic is None or p.magic == magic)]

    # -- orders and deals ---------------------------------------------------------------------------
    def insert_order(self, ticket: int, symbol: str, side: str, volume: float, price: float, sl: float,
                     tp: float, magic: int, comment: str, time: float, position_id: int, reason: str) -> None:
        with self.lock:
            self._conn.execute(
                _INSERT_ORDER, (ticket, symbol, side, volume, price, sl, tp, magic, comment, time, position_id, reason))

    def insert_deal(self, d: Deal) -> None:
        self._insert_deal_values(_deal_values(d))

    def insert_deal_row(self, values: tuple) -> None:
        """A deal from its values in `_DEAL_COLS` order. Written as they are when each has the exact type a `Deal`
        holds it in and each literal column one of its values: a Deal's validation returns those unchanged (it has
        no other constraints), so one built only to be read back into a tuple would change nothing
        (tests/test_paper_entry_deal.py, tests/test_paper_exit_deal.py). Anything else goes through `Deal`,
        which converts or refuses it."""
        if tuple(map(type, values)) == _DEAL_TYPES and all(values[i] in ok for i, ok in _DEAL_LITERALS):
            self._insert_deal_values(values)
        else:
            self.insert_deal(Deal(**dict(zip(_DEAL_COLS, values, strict=True))))

    def _insert_deal_values(self, values: tuple) -> None:
        """A deal row from its values in `_DEAL_COLS` order, exactly as a `Deal` holds them."""
        with self.lock:
            self._conn.execute(_INSERT_DEAL, values)
            self._fresh()
            by_pos = self._deals_by_pos
            if by_pos is not None:
                row = _as_read_back(values)
                if row is None:  # a value whose read-back this cannot vouch for: the next read asks SQLite
                    self._deals_by_pos = None
                    return
                rows = by_pos.setdefault(row[_POSITION], [])
                if rows and (rows[-1][_TIME], rows[-1][_TICKET]) > (row[_TIME], row[_TICKET]):
                    insort(rows, row, key=_deal_order)
                else:
                    rows.append(row)

    def _position_deals(self, position_id: int) -> list[tuple]:
        """A position's deal rows, from memory (all deals are read once, then kept; callers hold the lock)."""
        self._fresh()
        by_pos = self._deals_by_pos
        if by_pos is None:
            cur = self._conn.cursor()
            cur.row_factory = None
            by_pos = {}
            for r in cur.execute(_SELECT_DEALS + " ORDER BY time, ticket"):
                by_pos.setdefault(r[_POSITION], []).append(r)
            self._deals_by_pos = by_pos
        return by_pos.get(position_id, [])

    def deals(self, position_id: int | None = None, since: float | None = None) -> list[Deal]:
        if position_id is not None and since is None:
            with self.lock:
                rows = self._position_deals(position_id)
                return [Deal(**dict(zip(_DEAL_COLS, r, strict=True))) for r in rows]
        sql, args = _SELECT_DEALS + " WHERE 1=1", []
        if position_id is not None:
            sql, args = sql + " AND position_id=?", [*args, position_id]
        if since is not None:
            sql, args = sql + " AND time>=?", [*args, since]
        with self.lock:
            cur = self._conn.cursor()
            cur.row_factory = None  # plain tuples: a Row looks each name up by a scan of its columns
            rows = cur.execute(sql + " ORDER BY time, ticket", args).fetchall()
        return [Deal(**dict(zip(_DEAL_COLS, r, strict=True))) for r in rows]


def _deal_order(row: tuple) -> tuple:
    return row[_TIME], row[_TICKET]


def _as_read_back(values: tuple) -> tuple | None:
    """A deal's column values as SQLite returns them once stored, or None if that is not sure: of the exact
    column types (what a validated Deal holds) only a REAL -0.0 changes (it reads back as 0.0, as `+ 0.0` makes
    it; any other float is left as it is)."""
    if tuple(map(type, values)) != _DEAL_TYPES:
        return None
    ticket, order, pid, symbol, side, entry, volume, price, profit, commission, swap, magic, comment, t, reason = values
    return (ticket, order, pid, symbol, side, entry, volume + 0.0, price + 0.0, profit + 0.0, commission + 0.0,
            swap + 0.0, magic, comment, t + 0.0, reason)


class _Transaction:
    """`PaperStore.transaction()`: BEGIN IMMEDIATE ... COMMIT under the store's lock, rolled back on any
    exception (and the in-memory rows dropped with it); nested uses join the outer transaction.

    A plain context manager, one per store (its state is the store's, under the lock): an order opens
    three of them (its own, the ticket counter's, the balance's) and a generator-based one cost several
    times as much. The depth is raised only once BEGIN succeeded: a BEGIN that failed (database locked)
    must not leave later transactions believing they are nested, running without one.
    """

    __slots__ = ("_st",)

    def __init__(self, store: PaperStore) -> None:
        self._st = store

    def __enter__(self) -> None:
        st = self._st
        st.lock.acquire()
        if st._depth:
            st._depth += 1
            return
        try:
            st._conn.execute("BEGIN IMMEDIATE")
            st._fresh()  # what other connections committed before this began (skipped inside it)
        except BaseException:
            if st._conn.in_transaction:
                st._conn.execute("ROLLBACK")
            st.lock.release()
            raise
        st._depth = 1

    def __exit__(self, exc_type, exc, tb) -> None:
        st = self._st
        try:
            if st._depth > 1:
                st._depth -= 1
                return
            try:
                if exc_type is None:
                    try:
                        st._write_pending()
                    except BaseException:
                        st._forget()
                        st._conn.execute("ROLLBACK")
                        raise
                    try:
                        st._conn.execute("COMMIT")
                    except BaseException:
                        st._forget()
                        raise
                else:
                    st._forget()  # it held this transaction's uncommitted changes
                    st._conn.execute("ROLLBACK")
            finally:
                st._depth = 0
                st._pending.clear()
        finally:
            st.lock.release()
