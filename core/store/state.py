"""Small persisted state: the kill switch (one row + an audit log) and a key-value table.

The kill switch lives in the store, not in memory, because an auto-disable must survive a restart
until a human resumes: a bot that re-enables itself by crashing would defeat the point.
"""
from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from core.domain.clock import Clock
from core.store.db import Database


class KillSwitchState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paused: bool = False
    emergency: bool = False
    auto_disabled: bool = False
    reason: str = ""
    by: str | None = None
    at: float | None = None
    resumed_by: str | None = None
    resumed_at: float | None = None

    @property
    def blocking(self) -> bool:
        return self.paused or self.emergency or self.auto_disabled


class KillSwitchRepo:
    def __init__(self, db: Database, clock: Clock):
        self._db = db
        self._clock = clock
        # (row text, its parse): every order and every monitor cycle asks, and the row almost never changes.
        # The row is still read each time (another process may pause us), only its parse is remembered.
        self._parsed: tuple[str, KillSwitchState] | None = None
        # A private (`:memory:`) store has no other writer and this repo is the row's only writer in the
        # process (tests/test_store_fast_paths.py checks the sources), so there the row's parse as last
        # written or read is kept with the rollback count it was stamped with: (count, parse).
        self._known: tuple[int, KillSwitchState] | None = None

    def get(self) -> KillSwitchState:
        return self._current().model_copy()  # the caller's own copy: a caller may change it before `set`

    def emergency(self) -> tuple[bool, str | None]:
        """(emergency stop on, who set it): `get()`'s answer without a copy, for a check every monitor cycle."""
        s = self._current()
        return s.emergency, s.by

    def blocking(self) -> bool:
        """`get().blocking` without a copy (the entry gate, twice per order)."""
        return self._current().blocking

    def _current(self) -> KillSwitchState:
        """The state as the row reads now: a shared object, never handed out (see `get`)."""
        known = self._known
        if known is None or known[0] != self._db.rollbacks:
            if not self._db.private:
                return self._read()
            with self._db.write_lock:  # no write can land between the read and keeping it
                known = self._known = (self._db.rollbacks, self._read())
        return known[1]

    def _read(self) -> KillSwitchState:
        """The row's parse (a shared object: copy it before handing it out); the default state if no row."""
        row = self._db.conn.execute("SELECT data FROM kill_switch WHERE id=1").fetchone()
        if row is None:
            return KillSwitchState()
        text = row["data"]
        hit = self._parsed
        if hit is None or hit[0] != text:
            hit = self._parsed = (text, KillSwitchState.model_validate_json(text))
        return hit[1]

    def set(self, state: KillSwitchState, action: str, by: str | None = None, reason: str = "") -> KillSwitchState:
        """Replace the state and append an audit row, in one transaction."""
        text = state.model_dump_json()
        with self._db.transaction() as c:
            c.execute("INSERT OR REPLACE INTO kill_switch(id, data) VALUES (1, ?)", (text,))
            c.execute(
                "INSERT INTO kill_switch_log(ts, action, by, reason, data) VALUES (?,?,?,?,?)",
                (self._clock.now(), action, by, reason, text),
            )
            if self._db.private:  # as a read of the row gives it (stamped inside: a rollback drops it)
                self._known = (self._db.rollbacks, KillSwitchState.model_validate_json(text))
        return state

    def update(self, fn, action: str, by: str | None = None, reason: str = "") -> tuple[KillSwitchState, KillSwitchState]:
        """Read-modify-write under the write lock (no write if unchanged); returns (before, after)."""
        with self._db.transaction():
            before = self.get()
            after = fn(before.model_copy())
            if after != before:
                self.set(after, action, by, reason)
        return before, after

    def history(self, n: int = 20) -> list[dict[str, Any]]:
        rows = self._db.conn.execute(
            "SELECT ts, action, by, reason FROM kill_switch_log ORDER BY id DESC LIMIT ?", (int(n),)
        ).fetchall()
        return [dict(r) for r in reversed(rows)]


class KVRepo:
    """JSON values by key, for small state other components must keep across restarts
    (e.g. re-entry counters per range, the last monitor heartbeat)."""

    def __init__(self, db: Database, clock: Clock):
        self._db = db
        self._clock = clock

    def get(self, key: str, default: Any = None) -> Any:
        row = self._db.conn.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return json.loads(row["value"]) if row else default

    def set(self, key: str, value: Any) -> None:
        with self._db.transaction() as c:
            c.execute(
                "INSERT INTO kv(key, value, updated_at) VALUES (?,?,?) ON CONFLICT(key) DO UPDATE SET "
                "value=excluded.value, updated_at=excluded.updated_at",
                (key, json.dumps(value, sort_keys=True), self._clock.now()),
            )

    def delete(self, key: str) -> None:
        with self._db.transaction() as c:
            c.execute("DELETE FROM kv WHERE key=?", (key,))

    def items(self, prefix: str = "") -> dict[str, Any]:
        rows = self._db.conn.execute(
            "SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key", (prefix, prefix + "\U0010ffff")
        ).fetchall()
        return {r["key"]: json.loads(r["value"]) for r in rows}
