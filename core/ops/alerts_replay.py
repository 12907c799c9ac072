"""Which logged alerts a chat should get late, and how they look when it does.

Why: a trader whose Telegram was down for ten minutes must still learn that a range was invalidated or
that an exit failed. The store's alert log already says, per sink, what was delivered (`set_delivery`),
so a chat that comes back is sent what was routed to it and not delivered, marked as late so nobody
acts on a stale "exit now" as if it were fresh. Alerts logged after the chat was expected by this
process count unless it got them; older ones (a previous run: a crash or restart while the chat was
down) only where that run recorded the chat missing them, so a normal start-up replays nothing. Only
the last hour: older news is for /health and the log. A long outage must not bury the phone: past `CATCHUP_CAP` the most severe and
most recent go out, plus one summary line; critical alerts and non-routine high ones are never cut,
while routine opens/closes (sent "high" only so the chat hears of them live) are cut first.
"""
from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from typing import Any

from core.domain.models import ActiveTrade, Alert, RangeStructure
from core.ops.alert_texts import route_as

log = logging.getLogger(__name__)

CATCHUP_MAX_AGE_S = 3600.0  # same horizon as replay_undelivered's default
CATCHUP_CAP = 10
ROUTINE = frozenset({"trade_opened", "exit_executed"})
# a sink's entry in `deliveries` that means "nothing left to send it"
_HANDLED = ("delivered", "summarised", "gave up")
# late copies of one alert a chat may fail before it is given up: a message the chat refuses for good
# (too long, bad markup) would otherwise be re-sent, with all its retries, after every later success
LATE_TRIES = 2
# ... and the entries a previous run left when the chat did not get an alert
_MISSED = ("missed", "failed")
_RANK = {"critical": 0, "high": 1, "medium": 2, "info": 3}


def row_alert(row: dict[str, Any]) -> Alert:
    """The alert as logged, with what its chart is drawn from when that was kept (the trade and the range),
    so a catch-up copy after a restart carries its chart like the live one."""
    alert = Alert(kind=row["kind"], severity=row["severity"], title=row["title"], text=row["text"],
                  symbol=row["symbol"], ticket=row["ticket"], created_at=row["ts"], dedup_key=row["dedup_key"])
    raw = row.get("chart")
    if not raw:
        return alert
    try:
        chart = json.loads(raw)
        return alert.model_copy(update={
            "trade": ActiveTrade.model_validate(chart["trade"]) if chart.get("trade") else None,
            "range_data": RangeStructure.model_validate(chart["range_data"]) if chart.get("range_data") else None,
            "exit_price": chart.get("exit_price"),
        })
    except (ValueError, TypeError, KeyError) as e:  # an unreadable chart record: the words still go out
        log.warning("alert %s: its chart data could not be read (%s); sent without a chart", row.get("id"), e)
        return alert


def crash_leftovers(store: Any, since: float) -> list[tuple[Alert, int]]:
    """Alerts a crash left 'queued' (no sink answered before the process died), oldest first."""
    if store is None:
        return []
    rows = store.alerts.undelivered(since)
    for r in rows:
        log.warning("re-sending alert left undelivered by a restart: %s", r["title"])
    return [(row_alert(r), r["id"]) for r in rows]


def missed(rows: list[dict[str, Any]], sink: str, routing: dict[str, list[str]], in_flight: set[int],
           expected_from: int = 0) -> list[dict]:
    """Rows routed to `sink` that it has not got and that are not on their way to it now. Rows from
    before `expected_from` (an earlier run) count only with a recorded miss for `sink`: no record there
    means the chat was not expected then, or a crash left the row 'queued' for `crash_leftovers`."""
    def got_it(r: dict[str, Any]) -> bool:
        said = r["deliveries"].get(sink, "")
        return said.startswith(_HANDLED) or (r["id"] <= expected_from and not said.startswith(_MISSED))

    return [r for r in rows if sink in routing.get(route_as(r["kind"], r["severity"]), [])
            and r["id"] not in in_flight and not got_it(r)]


def must_send(row: dict[str, Any]) -> bool:
    return row["severity"] == "critical" or (row["severity"] == "high" and row["kind"] not in ROUTINE)


def plan(rows: list[dict[str, Any]], cap: int = CATCHUP_CAP) -> tuple[list[dict], list[dict]]:
    """(to send, oldest first; to summarise). Under the cap everything goes. Over it: every critical and
    non-routine high one, then the rest by severity, most recent first, until `cap` are chosen."""
    if len(rows) <= cap:
        return list(rows), []
    keep = {r["id"] for r in rows if must_send(r)}
    others = sorted((r for r in rows if r["id"] not in keep), key=lambda r: (_RANK.get(r["severity"], 9), -r["id"]))
    keep.update(r["id"] for r in others[:max(cap - len(keep), 0)])
    return [r for r in rows if r["id"] in keep], [r for r in rows if r["id"] not in keep]


def late_copy(row: dict[str, Any]) -> Alert:
    """The logged alert, its title saying when it happened: it is news from the past, not a live call."""
    alert = row_alert(row)
    at = datetime.fromtimestamp(row["ts"], UTC).strftime("%H:%M")
    return alert.model_copy(update={"title": f"⏱ delayed, from {at} UTC: {alert.title}"})


def summary(n: int, now: float) -> Alert:
    return Alert(kind="catchup_summary", severity="high", title=f"⏱ delayed: {n} more alert(s) not shown",
                 text=f"and {n} more: /health or the log", created_at=now)


class CatchUp:
    """The catch-up book of one RangeScalpingAlerts: per expected chat, where its history starts (the last
    log id before it was expected), which log ids are on its queue now (not missed, just not there yet)
    and whether its last delivery failed (its next success means it is back). An alert is logged on the
    sending thread and queued on the loop a moment later: until then it is `handing`, on its way to every
    chat registered when it is queued, so a catch-up in between must leave it alone."""

    def __init__(self, store: Any, routing: dict[str, list[str]], clock: Any) -> None:
        self._store = store
        self._routing = routing
        self._clock = clock
        self.expected: dict[str, int] = {}
        self.in_flight: dict[str, set[int]] = {}
        self.failing: set[str] = set()
        self._late_failed: dict[tuple[str, int], int] = {}
        self._handing: set[int] = set()
        self._handing_lock = threading.Lock()  # the sending thread adds, the loop removes and reads

    def handing(self, log_id: int | None) -> None:
        if log_id is not None:
            with self._handing_lock:
                self._handing.add(log_id)

    def handed(self, log_id: int | None) -> None:
        if log_id is not None:
            with self._handing_lock:
                self._handing.discard(log_id)

    def expect(self, sink: str) -> None:
        if sink not in self.expected:
            self.expected[sink] = self._store.alerts.last_id() if self._store is not None else 0

    def log_absent(self, severity: str, log_id: int | None, registered: set[str]) -> None:
        """Say in the log that an expected chat routed this alert was not there to get it."""
        if self._store is None or log_id is None:
            return
        for sink in self._routing.get(severity, []):  # the caller passes the routed severity (route_as)
            if sink in self.expected and sink not in registered:
                try:
                    self._store.alerts.set_delivery(log_id, sink, "missed: not connected")
                except Exception as e:
                    log.error("could not record alert delivery: %s", e)

    def queued(self, sink: str, log_id: int | None) -> None:
        if log_id is not None:
            self.in_flight.setdefault(sink, set()).add(log_id)

    def done(self, sink: str, log_id: int | None, ok: bool) -> bool:
        """One delivery is over; True when it is a failing expected chat answering again."""
        if log_id is not None:
            self.in_flight.get(sink, set()).discard(log_id)
        if sink not in self.expected:
            return False
        if not ok:
            self.failing.add(sink)
            return False
        back = sink in self.failing
        self.failing.discard(sink)
        return back

    def outcome(self, sink: str, log_id: int | None, ok: bool, late: bool, failure: str) -> str:
        """The alert log's word for one delivery. A late copy that failed `LATE_TRIES` times is given up
        ('gave up: …' counts as handled), so a message the chat refuses for good stops coming back."""
        if ok:
            return "delivered late" if late else "delivered"
        if late and log_id is not None:
            key = (sink, log_id)
            self._late_failed[key] = self._late_failed.get(key, 0) + 1
            if self._late_failed[key] >= LATE_TRIES:
                return "gave up: late copy " + failure
        return failure

    def due(self, sink: str) -> list[tuple[Alert, int | None]]:
        """What to send `sink` now, oldest first, as (late copy, its log id); the summary line last. Alerts
        left out are logged 'summarised' for it, so the next catch-up does not count them again."""
        if self._store is None or sink not in self.expected:
            return []
        try:
            rows = self._store.alerts.logged_after(0, self._clock.now() - CATCHUP_MAX_AGE_S)
            with self._handing_lock:
                busy = self.in_flight.get(sink, set()) | self._handing
            rows = missed(rows, sink, self._routing, busy, self.expected[sink])
            send, summarised = plan(rows)
            for r in summarised:
                self._store.alerts.set_delivery(r["id"], sink, "summarised in a catch-up")
        except Exception as e:  # the store is unhappy: live alerts matter more than late ones
            log.error("could not read the alert log to catch %s up: %s", sink, e)
            return []
        if rows:
            log.warning("catching %s up on %d missed alert(s), %d summarised", sink, len(rows), len(summarised))
        out: list[tuple[Alert, int | None]] = [(late_copy(r), r["id"]) for r in send]
        if summarised:
            out.append((summary(len(summarised), self._clock.now()), None))
        return out
