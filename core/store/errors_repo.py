"""Persisted error events: the audit trail and the source of truth for auto-disable rate windows.

Rates are computed from these rows (not from an in-memory deque) so that a crash loop that restarts
the bot every minute still accumulates toward the auto-disable threshold.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.store.db import Database

Severity = Literal["critical", "high", "medium", "info"]


class ErrorEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int | None = None
    ts: float
    error_type: str
    severity: Severity
    message: str = ""
    symbol: str | None = None
    ticket: int | None = None
    action: str = ""
    outcome: str = ""
    context: dict[str, Any] = Field(default_factory=dict)


class ErrorEventRepo:
    def __init__(self, db: Database):
        self._db = db

    def add(self, event: ErrorEvent) -> ErrorEvent:
        with self._db.transaction() as c:
            cur = c.execute(
                "INSERT INTO error_events(ts, error_type, severity, message, symbol, ticket, action, outcome, context)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (event.ts, event.error_type, event.severity, event.message, event.symbol, event.ticket,
                 event.action, event.outcome, json.dumps(event.context, sort_keys=True, default=str)),
            )
        return event.model_copy(update={"id": int(cur.lastrowid)})

    def count_since(self, ts: float, severities: Iterable[str] | None = None) -> int:
        """Events with ts > `ts` (strictly after), optionally only the given severities."""
        sql, args = "SELECT COUNT(*) FROM error_events WHERE ts > ?", [ts]
        if severities is not None:
            sev = list(severities)
            sql += f" AND severity IN ({','.join('?' * len(sev))})"
            args += sev
        return int(self._db.conn.execute(sql, args).fetchone()[0])

    @staticmethod
    def _row(r) -> ErrorEvent:
        return ErrorEvent(id=r["id"], ts=r["ts"], error_type=r["error_type"], severity=r["severity"],
                          message=r["message"], symbol=r["symbol"], ticket=r["ticket"], action=r["action"],
                          outcome=r["outcome"], context=json.loads(r["context"] or "{}"))

    def recent(self, n: int = 50, error_type: str | None = None) -> list[ErrorEvent]:
        """The last `n` events, oldest first."""
        if error_type is None:
            rows = self._db.conn.execute("SELECT * FROM error_events ORDER BY id DESC LIMIT ?", (int(n),))
        else:
            rows = self._db.conn.execute(
                "SELECT * FROM error_events WHERE error_type=? ORDER BY id DESC LIMIT ?", (error_type, int(n))
            )
        return [self._row(r) for r in reversed(rows.fetchall())]

    def count(self) -> int:
        return int(self._db.conn.execute("SELECT COUNT(*) FROM error_events").fetchone()[0])
