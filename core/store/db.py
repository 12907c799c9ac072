"""The SQLite connection layer: one file, WAL, synchronous=FULL, ordered migrations, transactions.

Why these choices:
- WAL + `synchronous=FULL`: a committed lifecycle step (fill → register → journal) must survive a
  SIGKILL or power loss; WAL keeps readers (`moneybot state export`, the chat layer) from blocking
  the monitor's writes.
- One connection per thread: sqlite3 connections must not be shared across threads without care,
  and the bot runs asyncio code on the loop thread plus blocking broker calls on worker threads.
  An in-process write lock serialises writers cheaply (SQLite's own busy handler sleeps in
  10-100 ms steps, far too coarse under contention); `busy_timeout` still covers other processes.
- `transaction()` is `BEGIN IMMEDIATE`, so the write lock is taken up front and a read-modify-write
  inside it cannot be interleaved with another writer (that is what makes compare-and-set and
  `update_trade` lost-update free). Nested `transaction()` calls become SAVEPOINTs, so repository
  methods can be called inside a caller's transaction or on their own.
- Never `await` inside a transaction: the connection belongs to the thread, and another task on the
  same loop would silently join the open transaction. A guard raises if that happens.
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.domain.exceptions import UserFacingError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000


_FIX = (". Move the file aside (e.g. rename it to {name}.bad) to start a fresh store (open trades are re-adopted "
        "from the broker), or restore it from a backup")


class StoreError(UserFacingError):
    """The store cannot be opened or used (corrupt file, newer schema, unwritable path)."""


class TransactionMisuse(RuntimeError):
    """A programming error: e.g. another asyncio task entered a transaction that was left open across an await."""


@dataclass(frozen=True)
class Migration:
    """One schema step. `sql` runs inside a transaction together with the version bump."""

    version: int
    name: str
    sql: str | Callable[[sqlite3.Connection], None]


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.conn: sqlite3.Connection | None = None
        self.depth = 0
        self.owner_task: object | None = None
        self.after: list[Callable[[], object]] = []


def _current_task() -> object | None:
    """`asyncio.current_task()`, None outside a running loop. Asked by every transaction and every write inside
    one; the loop is looked up with `_get_running_loop` (None there), as `get_running_loop` would raise and the
    RuntimeError be caught: that cost ~7x as much, and the backtest's replay runs its cycles without a loop."""
    loop = asyncio._get_running_loop()
    return None if loop is None else asyncio.current_task(loop)


class _Rows:
    """A fully fetched result, so the shared connection's lock is not held while a caller iterates (and an
    autocommitted RETURNING statement is stepped to its end, i.e. committed, before the caller reads it)."""

    __slots__ = ("rows", "rowcount", "lastrowid")

    def __init__(self, cur: sqlite3.Cursor):
        self.rows = cur.fetchall() if cur.description is not None else []
        self.rowcount = cur.rowcount
        self.lastrowid = cur.lastrowid

    def fetchone(self):
        return self.rows[0] if self.rows else None

    def fetchall(self):
        return list(self.rows)

    def __iter__(self):
        return iter(self.rows)


class _SharedConn:
    """`:memory:` databases exist per connection, so every thread must share one; the lock serialises it."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock):
        self._conn = conn
        self._lock = lock

    def execute(self, sql: str, params=()) -> _Rows:
        with self._lock:
            return _Rows(self._conn.execute(sql, params))

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def close(self) -> None:
        self._conn.close()


class Database:
    """Connections, pragmas, migrations and transactions for one SQLite file (or `:memory:`)."""

    def __init__(self, path: str | Path, migrations: Sequence[Migration]):
        self.path = Path(path)
        self.migrations = sorted(migrations, key=lambda m: m.version)
        versions = [m.version for m in self.migrations]
        if len(set(versions)) != len(versions) or any(v <= 0 for v in versions):
            raise ValueError("migration versions must be unique positive integers")
        self._local = _ThreadState()
        self._write_lock = threading.RLock()
        self._all_conns: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._conns_lock = threading.Lock()
        self._closed = False
        self._rollbacks = 0  # see `rollbacks`
        self._shared: _SharedConn | None = None
        if str(self.path) == ":memory:":
            self._shared = _SharedConn(self._connect(), self._write_lock)
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create the store directory {self.path.parent}: {e.strerror}") from None
        self.migrate()

    # -- connections -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal" and str(self.path) != ":memory:":
                log.warning("store %s: could not enable WAL (journal_mode=%s)", self.path, mode)
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot open the store {self.path}: {e}{_FIX.format(name=self.path.name)}") from None
        me = threading.current_thread()
        with self._conns_lock:
            dead = [(t, c) for t, c in self._all_conns if not t.is_alive()]
            self._all_conns = [(t, c) for t, c in self._all_conns if t.is_alive()] + [(me, conn)]
        for _, c in dead:  # short-lived worker threads must not leak file handles
            try:
                c.close()
            except sqlite3.Error:  # pragma: no cover
                pass
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        if self._closed:
            raise StoreError(f"the store {self.path} is closed")
        if self._shared is not None:
            return self._shared  # type: ignore[return-value]
        c = self._local.conn
        if c is None:
            c = self._local.conn = self._connect()
        return c

    def close(self) -> None:
        self._closed = True
        with self._conns_lock:
            conns, self._all_conns = self._all_conns, []
        for _, c in conns:
            try:
                c.close()
            except sqlite3.Error:  # pragma: no cover - closing from another thread may race
                pass

    @property
    def private(self) -> bool:
        """`:memory:`: one connection that no other process or connection can write, so what this process
        wrote last is what the rows hold (a repository may keep it in memory, dropping it on a rollback)."""
        return self._shared is not None

    @property
    def rollbacks(self) -> int:
        """How many rollbacks (whole or to a savepoint) this database has begun: a value kept in memory since
        before the current count may show a write that was undone. Read it BEFORE the read it stamps."""
        return self._rollbacks

    # -- transactions --------------------------------------------------------------------------
    @property
    def write_lock(self) -> threading.RLock:
        """The in-process writers' lock (re-entrant; a transaction holds it from BEGIN to COMMIT), for a
        read-then-`write` that must not see another thread's transaction half done."""
        return self._write_lock

    @property
    def in_transaction(self) -> bool:
        return self._local.depth > 0

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any exception); nested calls use SAVEPOINTs."""
        st = self._local
        task = _current_task()
        if st.depth > 0 and st.owner_task is not task:
            raise TransactionMisuse(
                "a store transaction was left open across an await and another task tried to use it"
            )
        conn = self.conn
        if st.depth == 0:
            self._write_lock.acquire()
            try:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as e:
                    raise StoreError(f"cannot start a store transaction on {self.path}: {e}") from None
                st.depth, st.owner_task = 1, task
                try:
                    yield conn
                except BaseException:
                    self._rollbacks += 1
                    _rollback(conn)
                    raise
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    self._rollbacks += 1
                    _rollback(conn)
                    raise
            finally:
                st.depth, st.owner_task = 0, None
                self._write_lock.release()
                self._run_after(st)
        else:
            name = f"sp{st.depth}"
            conn.execute(f"SAVEPOINT {name}")
            st.depth += 1
            try:
                yield conn
            except BaseException:
                st.depth -= 1
                self._rollbacks += 1
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
                raise
            st.depth -= 1
            conn.execute(f"RELEASE {name}")

    def after_transaction(self, fn: Callable[[], object]) -> None:
        """Run `fn` now, or, inside a transaction, right after it ends (commit OR rollback).

        For audit writes (error events, the alert log) that must survive even when the caller's
        step rolls back, and cannot use a second connection while this thread holds the write lock.
        """
        st = self._local
        if st.depth == 0:
            fn()
        else:
            st.after.append(fn)

    @staticmethod
    def _run_after(st: _ThreadState) -> None:
        while st.after:
            fn = st.after.pop(0)
            try:
                fn()
            except Exception:  # an audit write failing must not mask the step's own outcome
                log.exception("store: after-transaction callback failed")

    def execute(self, sql: str, params: Sequence | dict = ()) -> sqlite3.Cursor:
        """A single statement; writes outside a transaction get their own short one."""
        return self.conn.execute(sql, params)

    def write(self, sql: str, params: Sequence | dict = ()) -> _Rows:
        """ONE write statement, fully stepped: it joins an enclosing transaction, else commits on its own.

        A single statement is atomic by itself (SQLite undoes a failing statement alone and leaves the
        enclosing transaction open), so wrapping it in SAVEPOINT/RELEASE or BEGIN/COMMIT only costs two
        more round trips. Outside a transaction it still runs under the in-process write lock (writers
        queue on the lock, not on SQLite's coarse busy sleeps) and autocommits with synchronous=FULL,
        as durable as `transaction()`. For a write of several statements use `transaction()`.
        """
        st = self._local
        if st.depth > 0:
            if st.owner_task is not _current_task():
                raise TransactionMisuse(
                    "a store transaction was left open across an await and another task tried to use it"
                )
            conn = self.conn
            try:
                return _fetched(conn.execute(sql, params))
            except sqlite3.Error:
                if not conn.in_transaction:  # an error that rolled the whole transaction back (e.g. SQLITE_FULL)
                    self._rollbacks += 1
                raise
        conn = self.conn
        with self._write_lock:
            try:
                return _fetched(conn.execute(sql, params))
            except sqlite3.OperationalError as e:
                if getattr(e, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
                    # what `transaction()` says when its BEGIN cannot get the lock (another process holds it)
                    raise StoreError(f"cannot start a store transaction on {self.path}: {e}") from None
                raise

    def query(self, sql: str, params: Sequence | dict = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    # -- migrations ----------------------------------------------------------------------------
    @property
    def user_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    @property
    def latest_version(self) -> int:
        return self.migrations[-1].version if self.migrations else 0

    def migrate(self, target: int | None = None) -> list[int]:
        """Apply pending migrations in order, each in its own transaction; return the versions applied."""
        try:
            current = self.user_version
        except sqlite3.DatabaseError as e:
            raise StoreError(f"the store {self.path} is not a valid database ({e}){_FIX.format(name=self.path.name)}") \
                from None
        if current > self.latest_version:
            raise StoreError(
                f"the store {self.path} has schema version {current}, newer than this MoneyBot "
                f"understands ({self.latest_version}); upgrade MoneyBot or use another store path"
            )
        applied = []
        for m in self.migrations:
            if m.version <= current or (target is not None and m.version > target):
                continue
            with self.transaction() as conn:
                # re-check under the write lock: another process may have migrated meanwhile
                if int(conn.execute("PRAGMA user_version").fetchone()[0]) >= m.version:
                    continue
                if callable(m.sql):
                    m.sql(conn)
                else:
                    for stmt in _split_sql(m.sql):
                        conn.execute(stmt)
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version "
                    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
                )
                conn.execute(
                    "INSERT OR REPLACE INTO schema_version(version, name, applied_at) "
                    "VALUES (?, ?, datetime('now'))",
                    (m.version, m.name),
                )
                conn.execute(f"PRAGMA user_version={int(m.version)}")
            applied.append(m.version)
            log.info("store %s: applied migration %d (%s)", self.path, m.version, m.name)
        return applied


def _fetched(cur: sqlite3.Cursor | _Rows) -> _Rows:
    return cur if isinstance(cur, _Rows) else _Rows(cur)


def _rollback(conn: sqlite3.Connection) -> None:
    """ROLLBACK if a transaction is still open (some errors, e.g. SQLITE_FULL, already rolled it back)."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as e:  # pragma: no cover - nothing more we can do; the original error wins
            log.error("store rollback failed: %s", e)


def _split_sql(script: str) -> list[str]:
    """Split a migration script into statements (executescript would COMMIT our transaction)."""
    out, buf = [], []
    for line in script.splitlines():
        buf.append(line)
        if sqlite3.complete_statement("\n".join(buf)):
            stmt = "\n".join(buf).strip()
            if stmt.strip(";").strip():
                out.append(stmt)
            buf = []
    rest = "\n".join(buf).strip()
    if rest:
        out.append(rest)
    return out
