"""RangeScalpingAlerts: the one way anything in core tells a human something happened.

The exit manager, the monitor and the ErrorHandler all call this; the chat adapters register sinks
(`register_sink("telegram", async_fn)`). Design constraints, and why:
- `send()` never blocks: delivery runs on per-sink asyncio queues in the background. A slow or
  dead Telegram must not stall the monitor that is trying to close a position. Each sink has its
  own queue, so one failing sink does not delay the others, and order is kept per sink.
- Callable from worker threads too: the hand-off to the loop is `call_soon_threadsafe`. Alerts sent
  before a loop exists are buffered and flushed when one is attached.
- Failed deliveries are retried with exponential backoff (`alerts.sink_max_retries`,
  `sink_backoff_seconds`), each attempt bounded by a timeout; a final failure is logged and
  recorded in the store's alert log, so nothing is dropped silently.
- Identical alerts (same dedup_key, else kind+ticket+symbol+text) within `dedup_window_seconds`
  are sent once: a monitor cycle every few seconds must not spam the same invalidation.
- Routing per severity (`alerts.routing`): a sink only gets severities that list its name.
- A chat the runner expects (`expect_sink`) gets what it missed when back: see core/alerts_replay.py.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import re
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from core.config.settings import mask_secrets
from core.domain.clock import Clock, SystemClock
from core.domain.models import ActiveTrade, Alert
from core.domain.wording import symbol_price
from core.ops import alert_texts, alerts_replay

log = logging.getLogger(__name__)

Sink = Callable[[Alert], Awaitable[Any] | Any]

_LOG_LEVEL = {"critical": logging.CRITICAL, "high": logging.ERROR, "medium": logging.WARNING, "info": logging.INFO}
# Severity routes an alert to the chats; a routine open/close is sent "high" so the trader hears of it,
# but in the log it is news, not an error (a take profit logged at ERROR sends people hunting for bugs).
_ROUTINE = frozenset({"trade_opened", "exit_executed"})
_SECRET_PATTERNS = [
    re.compile(r"(?<!\d)\d{6,12}:[A-Za-z0-9_-]{30,}"),  # Telegram bot tokens
    re.compile(r"\b[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}\b"),  # Discord bot tokens
    re.compile(r"(?i)\b(password|passwd|token|secret|api[_-]?key)\b(\s*[=:]\s*)(\S+)"),
]


def redact_secrets(text: str) -> str:
    """Mask things that look like tokens or passwords before they reach a log or a chat."""
    out = mask_secrets(str(text))  # the values read from env/.env (the MT5 password has no pattern)
    for pat in _SECRET_PATTERNS[:2]:
        out = pat.sub("***", out)
    return _SECRET_PATTERNS[2].sub(lambda m: f"{m.group(1)}{m.group(2)}***", out)


class AlertRouting(BaseModel):
    """Defaults used when no config is given (mirrors config/range_scalping.json)."""

    routing: dict[str, list[str]] = {
        "critical": ["console", "telegram", "discord"],
        "high": ["console", "telegram", "discord"],
        "medium": ["console"],
        "info": [],
    }
    dedup_window_seconds: float = 300.0
    sink_max_retries: int = 3
    sink_backoff_seconds: float = 0.5


class DeliveryResult(BaseModel):
    kind: str
    sink: str
    ok: bool
    attempts: int
    error: str = ""


class RangeScalpingAlerts:
    def __init__(
        self,
        cfg: Any = None,
        clock: Clock | None = None,
        store: Any = None,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
        sink_timeout_seconds: float = 15.0,
    ):
        """`cfg`: AppConfig, its `alerts` section, or None for defaults. `store`: a core.store.Store
        (optional) for the alert log. `sleep` is injected so backoff tests run instantly."""
        section = getattr(cfg, "alerts", cfg)
        self._app_cfg = cfg if hasattr(cfg, "symbols") else None  # prices at each symbol's digits
        self.cfg = AlertRouting.model_validate(section.model_dump() if section is not None else {})
        self.clock: Clock = clock or SystemClock()
        self._store = store
        self._sleep = sleep or asyncio.sleep
        self._timeout = sink_timeout_seconds
        self._sinks: dict[str, Sink] = {}
        self._lock = threading.RLock()
        self._seen: dict[str, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: dict[str, asyncio.Queue] = {}
        self._workers: dict[str, asyncio.Task] = {}
        self._deferred: list[tuple[Callable[..., None], tuple]] = []  # calls waiting for a loop
        self._catchup = alerts_replay.CatchUp(store, self.cfg.routing, self.clock)
        self._handoffs = 0
        self.suppressed = 0
        self.results: deque[DeliveryResult] = deque(maxlen=500)
        self.sent: deque[Alert] = deque(maxlen=500)

    # -- sinks ---------------------------------------------------------------------------------
    def register_sink(self, name: str, fn: Sink) -> None:
        """Add a delivery channel named as in `alerts.routing`; an expected one coming (back) is caught up."""
        with self._lock:
            self._sinks[name] = fn
            expected = name in self._catchup.expected
        if expected:
            self._call_on_loop(self._catch_up, name)

    def expect_sink(self, name: str) -> None:
        """A configured chat (the runner has its token): what it misses from now on, and what an earlier run
        recorded it missing, goes to it late when it is back (`core.ops.alerts_replay`)."""
        with self._lock:
            self._catchup.expect(name)

    def unregister_sink(self, name: str) -> None:
        with self._lock:
            self._sinks.pop(name, None)

    @property
    def sink_names(self) -> list[str]:
        return sorted(self._sinks)

    def routes_for(self, severity: str) -> list[str]:
        """Registered sinks that receive `severity`."""
        with self._lock:
            return [n for n in self.cfg.routing.get(severity, []) if n in self._sinks]

    # -- sending -------------------------------------------------------------------------------
    def dedup_key(self, alert: Alert) -> str:
        return alert.dedup_key or f"{alert.kind}|{alert.ticket}|{alert.symbol}|{alert.text}"

    def send(self, alert: Alert) -> bool:
        """Queue `alert` for every routed sink and return at once. False if it was a duplicate."""
        now = self.clock.now()
        key = self.dedup_key(alert)
        window = self.cfg.dedup_window_seconds
        with self._lock:
            last = self._seen.get(key)
            if window > 0 and last is not None and now - last < window:
                self.suppressed += 1
                log.info("alert suppressed as duplicate within %.0fs: %s", window, alert.title)
                return False
            self._seen[key] = now
            if len(self._seen) > 2000:
                self._seen = {k: t for k, t in self._seen.items() if now - t < window}
            self.sent.append(alert)
        level = logging.INFO if alert.kind in _ROUTINE else _LOG_LEVEL.get(alert.severity, logging.WARNING)
        log.log(level, "ALERT [%s] %s: %s",
                alert.severity.upper(), redact_secrets(alert.title), redact_secrets(alert.text))
        def dispatch() -> None:
            log_id = self._persist(alert, "queued" if self.routes_for(alert_texts.route_as(alert.kind, alert.severity))
                                   else "logged")
            self._hand_off(alert, log_id)

        # inside a caller's store transaction, record and deliver right after it ends (commit or
        # rollback): an "exit failed" alert must go out even if the step that raised it rolls back
        db = getattr(self._store, "db", None)
        if db is not None and db.in_transaction:
            db.after_transaction(dispatch)
        else:
            dispatch()
        return True

    def _persist(self, alert: Alert, status: str) -> int | None:
        if self._store is None:
            return None
        try:
            return self._store.alerts.add(alert, status)
        except Exception as e:  # the alert must still go out if the store is unhappy
            log.error("could not record alert %r in the store: %s", alert.title, redact_secrets(str(e)))
            return None

    def _hand_off(self, alert: Alert, log_id: int | None) -> None:
        self._catchup.handing(log_id)  # logged, not queued yet: a catch-up now must not send it too
        self._call_on_loop(self._enqueue, alert, log_id)

    def _call_on_loop(self, fn: Callable[..., None], *args: Any) -> None:
        """Run `fn(*args)` on the loop thread: now if we are on it, else soon; kept until a loop exists."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        with self._lock:
            if running is not None and (self._loop is None or self._loop.is_closed()):
                self._bind(running)
            loop = self._loop
            if loop is None or loop.is_closed():
                self._deferred.append((fn, args))
                return
            if running is not loop:
                self._handoffs += 1
        if running is loop:
            fn(*args)
            return
        try:
            loop.call_soon_threadsafe(self._run_handoff, fn, args)
        except RuntimeError:  # loop closed between the check and the call
            with self._lock:
                self._handoffs -= 1
                self._deferred.append((fn, args))

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queues.clear()
        self._workers.clear()

    def attach(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Bind to `loop` (default: the running one) and flush alerts buffered before a loop existed."""
        loop = loop or asyncio.get_running_loop()
        with self._lock:
            if self._loop is not loop:
                self._bind(loop)
            deferred, self._deferred = self._deferred, []
        for fn, args in deferred:
            self._call_on_loop(fn, *args)

    def _run_handoff(self, fn: Callable[..., None], args: tuple) -> None:
        with self._lock:
            self._handoffs -= 1
        fn(*args)

    def _enqueue(self, alert: Alert, log_id: int | None) -> None:
        """Runs on the loop thread: onto each routed sink's queue; an expected chat not there is logged as missing it."""
        self._catchup.handed(log_id)  # on the queues (in flight) below, or logged missing: nothing runs in between
        route = alert_texts.route_as(alert.kind, alert.severity)
        routed = self.routes_for(route)
        for name in routed:
            self._put(name, alert, log_id, late=False)
        self._catchup.log_absent(route, log_id, set(routed))

    def _put(self, name: str, alert: Alert, log_id: int | None, *, late: bool) -> None:
        q = self._queues.get(name)
        if q is None:
            q = self._queues[name] = asyncio.Queue()
            self._workers[name] = asyncio.get_running_loop().create_task(
                self._worker(name, q), name=f"alerts-sink-{name}"
            )
        self._catchup.queued(name, log_id)
        q.put_nowait((alert, log_id, late))

    def _catch_up(self, name: str) -> None:
        """Runs on the loop thread: queue for `name`, marked late, what it missed while expected."""
        if name in self._sinks:
            for alert, log_id in self._catchup.due(name):
                self._put(name, alert, log_id, late=True)

    async def _worker(self, name: str, q: asyncio.Queue) -> None:
        while True:
            alert, log_id, late = await q.get()
            ok = False
            try:
                ok = (await self._deliver(name, alert, log_id, late=late)).ok
            except asyncio.CancelledError:
                raise
            except Exception:  # pragma: no cover - _deliver already catches sink errors
                log.exception("alert worker %s failed", name)
            finally:
                if self._catchup.done(name, log_id, ok):  # a failing chat answers again: it is back
                    self._catch_up(name)
                q.task_done()

    async def _deliver(self, name: str, alert: Alert, log_id: int | None, *, late: bool = False) -> DeliveryResult:
        attempts = 1 + self.cfg.sink_max_retries
        error = ""
        for i in range(attempts):
            fn = self._sinks.get(name)
            if fn is None:
                error = "sink unregistered"
                break
            try:
                res = fn(alert)  # a plain function works too (it then runs on the loop: keep it quick)
                if inspect.isawaitable(res):
                    await asyncio.wait_for(res, timeout=self._timeout)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a sink may fail any way it likes; we retry, then record
                error = redact_secrets(f"{type(e).__name__}: {e}") if str(e) else type(e).__name__
                if i + 1 < attempts:
                    log.warning("alert sink %s failed (attempt %d/%d): %s", name, i + 1, attempts, error)
                    await self._sleep(self.cfg.sink_backoff_seconds * (2 ** i))
                continue
            res = DeliveryResult(kind=alert.kind, sink=name, ok=True, attempts=i + 1)
            self._record(res, log_id, late=late)
            return res
        log.error("alert %r NOT delivered to %s after %d attempt(s): %s", alert.title, name, attempts, error)
        res = DeliveryResult(kind=alert.kind, sink=name, ok=False, attempts=attempts, error=error)
        self._record(res, log_id, late=late)
        return res

    def _record(self, res: DeliveryResult, log_id: int | None, *, late: bool = False) -> None:
        self.results.append(res)
        said = self._catchup.outcome(res.sink, log_id, res.ok, late, f"failed after {res.attempts}: {res.error}")
        if self._store is not None and log_id is not None:
            try:
                self._store.alerts.set_delivery(log_id, res.sink, said)
            except Exception as e:
                log.error("could not record alert delivery: %s", redact_secrets(str(e)))

    async def drain(self) -> None:
        """Wait until every queued alert has been delivered or given up (tests, shutdown)."""
        self.attach()
        while True:
            with self._lock:
                busy = self._handoffs > 0
                queues = list(self._queues.values())
            for q in queues:
                await q.join()
            if not busy and all(q.empty() for q in queues):
                with self._lock:
                    if self._handoffs == 0 and all(q._unfinished_tasks == 0 for q in self._queues.values()):
                        return
            await asyncio.sleep(0)

    async def close(self) -> None:
        """Drain, then stop the sink workers."""
        await self.drain()
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
            self._queues = {}
        for t in workers:
            t.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    def replay_undelivered(self, max_age_seconds: float = 3600.0) -> int:
        """At start-up (`TradingService.start`): re-send what a crash left 'queued', on its own log row."""
        leftovers = alerts_replay.crash_leftovers(self._store, self.clock.now() - max_age_seconds)
        for alert, log_id in leftovers:
            with self._lock:
                self._seen[self.dedup_key(alert)] = self.clock.now()
            self._hand_off(alert, log_id)
        return len(leftovers)

    # -- the named alerts ----------------------------------------------------------------------
    def _make(self, kind: str, severity: str, title: str, text: str, **kw: Any) -> Alert:
        return Alert(kind=kind, severity=severity, title=title, text=text, created_at=self.clock.now(), **kw)

    def alert_exit_failed(
        self, ticket: int, symbol: str, error: str, *, trade: ActiveTrade | None = None, attempts: int | None = None,
        severity: str = "critical",
    ) -> bool:
        text = alert_texts.exit_failed_text(symbol, ticket, redact_secrets(error), attempts, trade,
                                            lambda x: symbol_price(self._app_cfg, symbol, x))
        return self.send(self._make("exit_failed", severity, f"EXIT FAILED - {symbol} #{ticket}", text,
                                    symbol=symbol, ticket=ticket, trade=trade,
                                    range_data=trade.range_data if trade else None))

    def alert_exit_executed(
        self, trade: ActiveTrade, exit_price: float, reason: str, *, pnl: float | None = None,
        r_multiple: float | None = None, severity: str | None = None,
    ) -> bool:
        """Severity by what happened (a close is information; a take profit is good news, not a warning);
        trade news reaches the chats whatever its severity (`alert_texts.route_as`)."""
        r = trade.r_multiple(exit_price) if r_multiple is None else r_multiple
        money = f"{pnl:+.2f}" if pnl is not None else None  # the caller's figure: its unit is not known here
        text = alert_texts.closed_text(symbol_price(self._app_cfg, trade.symbol, exit_price), r, money, reason,
                                       at=self.clock.now())
        severity = severity or alert_texts.CLOSE_SEVERITY
        return self.send(self._make("exit_executed", severity, alert_texts.closed_title(trade, r, money), text,
                                    symbol=trade.symbol, ticket=trade.ticket, trade=trade,
                                    range_data=trade.range_data, exit_price=exit_price))

    def alert_system_error(
        self, error_type: str, message: str, *, severity: str = "high", symbol: str | None = None,
        ticket: int | None = None, dedup_key: str = "",
    ) -> bool:
        text = redact_secrets(message or error_type)
        return self.send(self._make("system_error", severity, alert_texts.system_error_title(error_type), text,
                                    symbol=symbol, ticket=ticket, dedup_key=dedup_key))

    def alert_auto_disabled(self, reason: str) -> bool:
        text = f"New entries are switched OFF: {reason}. Open trades are still monitored. Check /health, then /resume."
        return self.send(self._make("auto_disabled", "critical", "AUTO-DISABLED: no new trades", text))
