"""The alert log: every alert is recorded with its delivery outcome, so none is silently dropped."""
from __future__ import annotations

import json
from typing import Any

from core.domain.models import Alert
from core.store.db import Database


def chart_json(alert: Alert) -> str | None:
    """What the alert's chart is drawn from (trade, range, exit price), or None when it has no chart."""
    if alert.trade is None and alert.range_data is None:
        return None
    return json.dumps({"trade": alert.trade.model_dump(mode="json") if alert.trade is not None else None,
                       "range_data": alert.range_data.model_dump(mode="json") if alert.range_data is not None else None,
                       "exit_price": alert.exit_price})


class AlertLogRepo:
    def __init__(self, db: Database):
        self._db = db

    def add(self, alert: Alert, status: str) -> int:
        with self._db.transaction() as c:
            cur = c.execute(
                "INSERT INTO alerts_log(ts, kind, severity, title, text, symbol, ticket, dedup_key, status, chart)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                (alert.created_at, alert.kind, alert.severity, alert.title, alert.text, alert.symbol, alert.ticket,
                 alert.dedup_key, status, chart_json(alert)),
            )
        return int(cur.lastrowid)

    def set_delivery(self, alert_id: int, sink: str, result: str) -> None:
        """Record one sink's outcome ('delivered' or 'failed: ...'); the row status summarises them."""
        with self._db.transaction() as c:
            row = c.execute("SELECT deliveries FROM alerts_log WHERE id=?", (alert_id,)).fetchone()
            if row is None:
                return
            deliveries = json.loads(row["deliveries"] or "{}")
            deliveries[sink] = result
            failed = any(not v.startswith("delivered") for v in deliveries.values())
            status = "failed" if failed else "delivered"
            c.execute("UPDATE alerts_log SET deliveries=?, status=? WHERE id=?",
                      (json.dumps(deliveries, sort_keys=True), status, alert_id))

    def undelivered(self, since: float) -> list[dict[str, Any]]:
        """Alerts still 'queued' (the process died before any sink answered), oldest first."""
        rows = self._db.conn.execute(
            "SELECT * FROM alerts_log WHERE status='queued' AND ts >= ? ORDER BY id", (since,)
        ).fetchall()
        return [dict(r) for r in rows]

    def last_id(self) -> int:
        return int(self._db.conn.execute("SELECT COALESCE(MAX(id), 0) FROM alerts_log").fetchone()[0])

    def logged_after(self, after_id: int, since: float) -> list[dict[str, Any]]:
        """Alerts logged after row `after_id` and not before `since`, oldest first, deliveries parsed:
        what a chat that comes back may have missed."""
        rows = self._db.conn.execute(
            "SELECT * FROM alerts_log WHERE id > ? AND ts >= ? ORDER BY id", (int(after_id), since)
        ).fetchall()
        return [{**dict(r), "deliveries": json.loads(r["deliveries"] or "{}")} for r in rows]

    def recent(self, n: int = 50) -> list[dict[str, Any]]:
        rows = self._db.conn.execute("SELECT * FROM alerts_log ORDER BY id DESC LIMIT ?", (int(n),)).fetchall()
        out = []
        for r in reversed(rows):
            d = dict(r)
            d["deliveries"] = json.loads(d["deliveries"] or "{}")
            out.append(d)
        return out

    def count(self, status: str | None = None) -> int:
        if status is None:
            return int(self._db.conn.execute("SELECT COUNT(*) FROM alerts_log").fetchone()[0])
        return int(self._db.conn.execute("SELECT COUNT(*) FROM alerts_log WHERE status=?", (status,)).fetchone()[0])
