"""The lifecycle's one door to alerts, error events and the kill switch.

Execution, the monitor and recovery report through this adapter instead of calling
`RangeScalpingAlerts`, `ErrorHandler` and the kill switch directly, so those modules can evolve
without touching every call site, and so that the lifecycle still records error events and refuses
entries when it runs without them (benches, unit tests). It never raises: a failing alert sink or
error handler must not stop an exit.
"""
from __future__ import annotations

import logging
from collections import deque
from typing import Any

from core.domain.models import Alert

log = logging.getLogger(__name__)

REMINDER_SECONDS = 3600.0  # a condition re-reported every cycle (outage, failing exit) pages once, then hourly


class Notifier:
    def __init__(self, cfg, store=None, clock=None, alerts=None, errors=None, killswitch=None) -> None:
        self._cfg = cfg
        self._store = store
        self._clock = clock
        self.alerts = alerts
        self.errors = errors
        self.killswitch = killswitch
        self.sent: deque[Alert] = deque(maxlen=500)  # what was emitted, for /health and tests
        self._reminded: dict[str, float] = {}  # dedup key -> when a `remind_after` alert last went out

    def now(self) -> float:
        return float(self._clock.now()) if self._clock is not None else 0.0

    # ---- alerts ---------------------------------------------------------------------------------
    def alert(
        self, kind: str, severity: str, title: str, text: str, *, symbol: str | None = None,
        ticket: int | None = None, dedup_key: str = "", remind_after: float | None = None, **extra: Any,
    ) -> Alert | None:
        """Emit an alert. `remind_after`: a condition that is re-reported every cycle while it lasts
        (an outage) goes out once, then at most once per `remind_after` seconds until `clear_reminder`
        (the alert layer's own dedup window is shorter than a cycle, so it cannot stop those repeats)."""
        alert = Alert(
            kind=kind, severity=severity, title=title, text=text, symbol=symbol, ticket=ticket,
            created_at=self.now(), dedup_key=dedup_key or f"{kind}:{symbol}:{ticket}", **extra,
        )
        if remind_after is not None:
            # human time: on an accelerated paper replay (speed N) an hour is N hours of replay clock
            remind_after *= float(getattr(self._clock, "speed", 1.0) or 1.0)
            last = self._reminded.get(alert.dedup_key)
            if last is not None and alert.created_at - last < remind_after:
                log.info("alert %s already sent %.0f s ago; still true", kind, alert.created_at - last)
                return None
            self._reminded[alert.dedup_key] = alert.created_at
        self.sent.append(alert)
        log.log(logging.WARNING if severity in ("critical", "high") else logging.INFO, "alert %s: %s", kind, text)
        if self.alerts is not None:
            try:
                self.alerts.send(alert)
            except Exception:  # noqa: BLE001 - alerts must never break the lifecycle
                log.exception("alert %s could not be handed to RangeScalpingAlerts", kind)
        return alert

    def clear_reminder(self, dedup_key: str) -> None:
        """The condition behind a `remind_after` alert ended: its next occurrence is news again."""
        self._reminded.pop(dedup_key, None)

    # ---- error events -----------------------------------------------------------------------------
    def error(self, error_type: str, message: str, *, alert: bool = True, **context: Any) -> None:
        """Record an error event (persisted; counts toward auto-disable). `alert=False` when the caller
        sends its own, more specific alert (e.g. exit_failed)."""
        try:
            if self.errors is not None:
                self.errors.record(error_type, message, context=context, alert=alert)
            else:
                self._fallback_error(error_type, message, context)
        except Exception:  # noqa: BLE001
            log.exception("error event %s could not be recorded", error_type)

    def _fallback_error(self, error_type: str, message: str, context: dict) -> None:
        sev_cfg = self._cfg.error_severity
        severity = sev_cfg.map.get(error_type, sev_cfg.default)
        log.log(logging.ERROR if severity in ("critical", "high") else logging.WARNING, "%s: %s", error_type, message)
        if self._store is None:
            return
        from core.store.errors_repo import ErrorEvent

        self._store.errors.add(
            ErrorEvent(
                ts=self.now(), error_type=error_type, severity=severity, message=message,
                symbol=context.get("symbol"), ticket=context.get("ticket"),
                context={k: v for k, v in context.items() if isinstance(v, (str, int, float, bool, type(None)))},
            )
        )

    # ---- kill switch --------------------------------------------------------------------------------
    def emergency_on(self) -> str | None:
        """Who set the emergency stop that is on now ("user 7"), or None when it is off or unreadable."""
        try:
            if self.killswitch is not None:
                s = self.killswitch.state()
                on, by = s.emergency, s.by
            elif self._store is not None:
                on, by = self._store.kill_switch.emergency()
            else:
                return None
        except Exception:  # noqa: BLE001 - the exits go on either way
            log.exception("kill switch state unreadable")
            return None
        if not on:
            return None
        from core.domain.wording import actor_label

        return actor_label(by) if by else "a trader"

    def entries_blocked(self) -> str | None:
        """Why new entries are refused right now (pause, emergency, auto-disable), or None."""
        try:
            if self.killswitch is not None:
                return self.killswitch.block_reason()
            ks = self._cfg.kill_switch
            if ks.emergency_disable:
                return "Emergency disable is set in the config (kill_switch.emergency_disable)."
            if self._store is not None and self._store.kill_switch.blocking():
                return "New entries are switched off (paused, emergency or auto-disabled). A trader can /resume."
        except Exception:  # noqa: BLE001 - if we cannot tell, refuse: an entry is never urgent
            log.exception("kill switch state unreadable")
            return "The kill switch state could not be read, so new entries are refused."
        return None
