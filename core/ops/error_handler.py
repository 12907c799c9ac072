"""ErrorHandler: the config's policy table (`error_handling`) turned into behaviour.

One place decides, per error type, whether to skip the trade, retry (connection, execution, exit with
a wider slippage), fall back to the last known data, or just log; what severity it has (the seed's
map plus the stale-minutes override); who hears about it; and whether the error rate is bad enough
to switch new entries off. Why centralised: scattered try/excepts each invent their own retry
counts and alerting, and nothing can then count errors per hour for the auto-disable.

- Every recorded event is persisted (store.errors) before anything else happens, so a crash right
  after an error still leaves its trace, and the hourly rates survive restarts.
- Auto-disable counts persisted events in the last hour, but only those after the last human
  resume: otherwise resuming would be undone by the very errors that caused the disable.
- Sleeps and the clock are injected: retry tests run instantly and rate windows are deterministic.
"""
from __future__ import annotations

import asyncio
import logging
import numbers
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from core.config.ops import ErrorPolicy
from core.domain.clock import Clock, SystemClock
from core.domain.retry import attempts_of, run_async, run_sync
from core.ops.alerts import RangeScalpingAlerts, redact_secrets
from core.store import ErrorEvent, Store

log = logging.getLogger(__name__)

T = TypeVar("T")

SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "info": 3}
_LOG_LEVEL = {"critical": logging.CRITICAL, "high": logging.ERROR, "medium": logging.WARNING, "info": logging.INFO}
RETRY_ACTIONS = frozenset({"retry_connection", "retry_with_slippage", "retry_execution"})
DEFAULT_POLICY = ErrorPolicy(action="log_error")
HOUR = 3600.0

__all__ = ["Attempt", "ErrorEvent", "ErrorHandler", "ErrorOutcome", "LastKnown", "DEFAULT_POLICY"]


class Attempt(BaseModel):
    """What the retried function is told about this try.

    For `retry_with_slippage`, `slippage_pct` widens linearly from None (first try: use the normal
    deviation) to the policy's `max_slippage_pct` on the last retry.
    """

    number: int  # 0 = first try
    max_attempts: int
    slippage_pct: float | None = None

    @property
    def is_retry(self) -> bool:
        return self.number > 0


class LastKnown(BaseModel):
    """A cached value for `use_last_known_data`, with the time it was observed."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    value: Any
    as_of: float


class ErrorOutcome(BaseModel):
    """What happened, for the caller to act on (and for chat: `message` is trader-safe)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    error_type: str
    action: str
    ok: bool  # True if the operation succeeded (possibly after retries or with last-known data)
    result: Any = None
    attempts: int = 0
    severity: str = "info"
    fallback: str | None = None  # the fallback that was applied, if any
    used_last_known: bool = False
    skip_trade: bool = False
    notify_user: bool = False
    should_continue: bool = True
    message: str = ""
    error: str = ""
    event_id: int | None = None
    auto_disabled: bool = False


def error_rates(store, now: float) -> tuple[int, int]:
    """(critical, all non-info) events in the last hour, counted from after the last resume.

    Counting from the resume matters: the errors that caused an auto-disable must not re-trigger it the
    moment a human resumes. /health shows the same numbers the auto-disable acts on.
    """
    since = now - HOUR
    resumed = store.kill_switch.get().resumed_at
    if resumed is not None:
        since = max(since, resumed)
    crit = store.errors.count_since(since, ["critical"])
    total = store.errors.count_since(since, ["critical", "high", "medium"])
    return crit, total


class AutoDisabler(Protocol):
    """The kill switch as the ErrorHandler sees it. A Protocol, because the kill switch lives in
    `core.trading` above ops: `core.app` hands the real one in."""

    def auto_disable(self, reason: str) -> bool: ...
    def entries_allowed(self) -> bool: ...
    def state(self) -> Any: ...


class ErrorHandler:
    def __init__(
        self,
        cfg: Any,
        store: Store,
        alerts: RangeScalpingAlerts | None,
        killswitch: AutoDisabler,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
        sync_sleep: Callable[[float], Any] | None = None,
    ):
        """`cfg`: AppConfig (per-symbol policies via `for_symbol`) or a TradingConfig."""
        self.cfg = cfg
        self.store = store
        self.alerts = alerts
        self.clock: Clock = clock or store.clock or SystemClock()
        self.killswitch = killswitch
        self._sleep = sleep or asyncio.sleep
        self._sync_sleep = sync_sleep or time.sleep

    # -- policy & severity ---------------------------------------------------------------------
    def _section(self, symbol: str | None):
        if symbol is not None and hasattr(self.cfg, "for_symbol") and symbol in getattr(self.cfg, "symbols", {}):
            return self.cfg.for_symbol(symbol)
        return self.cfg

    def policy(self, error_type: str, symbol: str | None = None) -> ErrorPolicy:
        """The configured policy for `error_type` (per-symbol overrides apply); `log_error` if unknown."""
        return self._section(symbol).error_handling.get(error_type, DEFAULT_POLICY)

    def classify(self, error_type: str, context: dict[str, Any] | None = None) -> str:
        """Severity from the seed's map; a `stale_minutes` in the context overrides it."""
        sev_cfg = self.cfg.error_severity
        ctx = context or {}
        stale = ctx.get("stale_minutes")
        if isinstance(stale, numbers.Real) and not isinstance(stale, bool):
            if stale > sev_cfg.stale_minutes_high:
                return "high"
            if stale > sev_cfg.stale_minutes_medium:
                return "medium"
        return sev_cfg.map.get(error_type, sev_cfg.default)

    # -- recording -----------------------------------------------------------------------------
    def record(
        self,
        error_type: str,
        message: str = "",
        *,
        context: dict[str, Any] | None = None,
        severity: str | None = None,
        action: str = "",
        outcome: str = "",
        alert: bool = True,
    ) -> ErrorEvent:
        """Persist one event, log it at its severity, alert (unless `alert=False`), check auto-disable."""
        ctx = dict(context or {})
        sev = severity or self.classify(error_type, ctx)
        msg = redact_secrets(message or error_type)
        event = ErrorEvent(
            ts=self.clock.now(), error_type=error_type, severity=sev, message=msg,
            symbol=ctx.get("symbol"), ticket=ctx.get("ticket"), action=action, outcome=outcome,
            context={k: _clean(v) for k, v in ctx.items() if k != "trade"},
        )
        saved: list[ErrorEvent] = []

        def persist() -> None:
            try:
                saved.append(self.store.errors.add(event))
            except Exception as e:  # the store itself may be what failed; never lose the log line
                log.critical("could not persist error event %s: %s", error_type, redact_secrets(str(e)))

        def check() -> None:
            try:
                self.check_auto_disable()
            except Exception as e:  # a broken store must not turn error reporting into a crash
                log.critical("auto-disable check failed: %s", redact_secrets(str(e)))

        # inside a caller's transaction these run right after it ends, so a rollback cannot erase them
        self._after_tx(persist)
        log.log(_LOG_LEVEL.get(sev, logging.WARNING), "%s: %s%s", error_type, msg,
                f" [{action} -> {outcome}]" if action else "")
        if alert and self.alerts is not None and sev != "info":
            self.alerts.alert_system_error(error_type, msg, severity=sev, symbol=event.symbol, ticket=event.ticket)
        if sev != "info":
            self._after_tx(check)
        return saved[0] if saved else event

    def _after_tx(self, fn: Callable[[], Any]) -> None:
        if self.store.db.in_transaction:
            self.store.db.after_transaction(fn)
        else:
            fn()

    def error_rates(self, now: float | None = None) -> tuple[int, int]:
        return error_rates(self.store, self.clock.now() if now is None else now)

    def check_auto_disable(self) -> bool:
        """Switch new entries off if a rate threshold is crossed. True if it newly did so."""
        ks = self._section(None).kill_switch
        crit, total = self.error_rates()
        reason = None
        if crit >= ks.max_critical_errors_per_hour:
            reason = f"{crit} critical errors in the last hour (limit {ks.max_critical_errors_per_hour})"
        elif total >= ks.max_errors_per_hour:
            reason = f"{total} errors in the last hour (limit {ks.max_errors_per_hour})"
        if reason is None:
            return False
        newly = self.killswitch.auto_disable(reason)
        if newly and self.alerts is not None:
            self.alerts.alert_auto_disabled(reason)
        return newly

    # -- handling ------------------------------------------------------------------------------
    def handle(
        self, error_type: str, message: str = "", *, context: dict[str, Any] | None = None,
        last_known: LastKnown | None = None,
    ) -> ErrorOutcome:
        """An error already happened (no retry possible here): record it and apply the policy's fallback."""
        ctx = dict(context or {})
        pol = self.policy(error_type, ctx.get("symbol"))
        return self._fail(error_type, pol, ctx, message or pol.reason or error_type, attempts=1, last_known=last_known)

    async def run_with_policy(
        self,
        error_type: str,
        fn: Callable[[Attempt], Awaitable[T]],
        *,
        context: dict[str, Any] | None = None,
        last_known: LastKnown | None = None,
        retry_on: tuple[type[BaseException], ...] = (Exception,),
    ) -> ErrorOutcome:
        """Run `await fn(attempt)` under the policy for `error_type`.

        Retry actions run it up to `max_retries` times IN TOTAL (`core.domain.retry.attempts_of`, the rule
        every retry in the bot follows), `retry_interval` seconds apart.
        Exceptions outside `retry_on` propagate untouched. The outcome says whether it finally
        worked (`ok`, `result`) and which fallback was applied if not.
        """
        ctx = dict(context or {})
        pol = self.policy(error_type, ctx.get("symbol"))
        attempts = self.attempts(pol)
        errors: list[str] = []
        try:
            result = await run_async(attempts, pol.retry_interval, lambda i: fn(self._attempt(pol, i, attempts)),
                                     sleep=self._sleep, retry_on=retry_on,
                                     on_retry=self._noter(error_type, attempts, pol, errors))
        except retry_on as e:
            errors.append(_describe(e))
            return self._fail(error_type, pol, ctx, errors[-1], attempts=attempts, last_known=last_known)
        return self._success(error_type, pol, ctx, result, len(errors) + 1, errors)

    def run_with_policy_sync(
        self,
        error_type: str,
        fn: Callable[[Attempt], T],
        *,
        context: dict[str, Any] | None = None,
        last_known: LastKnown | None = None,
        retry_on: tuple[type[BaseException], ...] = (Exception,),
    ) -> ErrorOutcome:
        """The same as `run_with_policy` for blocking code on a worker thread."""
        ctx = dict(context or {})
        pol = self.policy(error_type, ctx.get("symbol"))
        attempts = self.attempts(pol)
        errors: list[str] = []
        try:
            result = run_sync(attempts, pol.retry_interval, lambda i: fn(self._attempt(pol, i, attempts)),
                              sleep=self._sync_sleep, retry_on=retry_on,
                              on_retry=self._noter(error_type, attempts, pol, errors))
        except retry_on as e:
            errors.append(_describe(e))
            return self._fail(error_type, pol, ctx, errors[-1], attempts=attempts, last_known=last_known)
        return self._success(error_type, pol, ctx, result, len(errors) + 1, errors)

    @staticmethod
    def _noter(error_type: str, attempts: int, pol: ErrorPolicy, errors: list[str]):
        def note(i: int, e: BaseException) -> None:
            errors.append(_describe(e))
            log.warning("%s (attempt %d/%d): %s; retrying in %ss", error_type, i + 1, attempts, errors[-1],
                        pol.retry_interval)
        return note

    @staticmethod
    def attempts(pol: ErrorPolicy) -> int:
        """Total attempts a policy allows: `max_retries` for a retry action (at least 1), else 1."""
        return attempts_of(pol.max_retries) if pol.action in RETRY_ACTIONS else 1

    @staticmethod
    def _attempt(pol: ErrorPolicy, i: int, attempts: int) -> Attempt:
        slip = None
        if pol.action == "retry_with_slippage" and i > 0 and pol.max_slippage_pct:
            slip = pol.max_slippage_pct * i / (attempts - 1)
        return Attempt(number=i, max_attempts=attempts, slippage_pct=slip)

    def _success(self, error_type: str, pol: ErrorPolicy, ctx: dict, result: Any, attempts: int,
                 errors: list[str]) -> ErrorOutcome:
        event_id = None
        if errors:  # it failed at least once, then worked: worth a (medium) trace, not an alarm
            ev = self.record("retry_succeeded", f"{error_type} recovered after {attempts} attempts: {errors[-1]}",
                             context={**ctx, "original_error_type": error_type, "attempts": attempts},
                             action=pol.action, outcome="recovered", alert=False)
            event_id = ev.id
        return ErrorOutcome(error_type=error_type, action=pol.action, ok=True, result=result, attempts=attempts,
                            severity="info" if not errors else self.classify("retry_succeeded", ctx),
                            event_id=event_id, error=errors[-1] if errors else "")

    def _fail(self, error_type: str, pol: ErrorPolicy, ctx: dict, error: str, *, attempts: int,
              last_known: LastKnown | None) -> ErrorOutcome:
        sev = self.classify(error_type, ctx)
        out = ErrorOutcome(error_type=error_type, action=pol.action, ok=False, attempts=attempts, severity=sev,
                           notify_user=pol.notify_user, error=redact_secrets(error),
                           message=pol.reason or f"{error_type}: {redact_secrets(error)}")
        fallback = pol.fallback
        fallback_alerts = False
        if pol.action == "skip_trade":
            out.skip_trade, fallback = True, fallback or "skip_trade"
        elif pol.action == "use_last_known_data":
            if last_known is not None and self._fresh_enough(pol, last_known):
                out.ok, out.result, out.used_last_known, fallback = True, last_known.value, True, "use_last_known_data"
                age = (self.clock.now() - last_known.as_of) / 60
                out.message = f"Using last known data ({age:.1f} min old) because: {out.error}"
            else:
                fallback = fallback or "skip_check"
        if fallback == "skip_trade":
            out.skip_trade = True
        elif fallback in ("alert_user", "alert_user_manual_close"):
            fallback_alerts = self.alerts is not None
        if pol.action == "retry_connection" or pol.continue_monitoring:
            out.should_continue = pol.continue_monitoring
        else:  # the seed: a critical failure stops the operation unless the policy says keep monitoring
            out.should_continue = sev != "critical"
        out.fallback = fallback
        ev = self.record(error_type, f"{error} (after {attempts} attempt{'s' if attempts != 1 else ''})",
                         context={**ctx, "attempts": attempts}, severity=sev, action=pol.action,
                         outcome=fallback or "failed", alert=not fallback_alerts)
        out.event_id = ev.id
        if fallback_alerts:
            self._fallback_alert(fallback, error_type, ctx, out, sev)
        out.auto_disabled = not self.killswitch.entries_allowed() and self.killswitch.state().auto_disabled
        return out

    def _fresh_enough(self, pol: ErrorPolicy, lk: LastKnown) -> bool:
        if pol.max_age_minutes is None:
            return True
        return (self.clock.now() - lk.as_of) <= pol.max_age_minutes * 60

    def _fallback_alert(self, fallback: str, error_type: str, ctx: dict, out: ErrorOutcome, sev: str) -> None:
        assert self.alerts is not None
        if fallback == "alert_user_manual_close" and ctx.get("ticket") is not None:
            self.alerts.alert_exit_failed(int(ctx["ticket"]), str(ctx.get("symbol") or "?"), out.error,
                                          trade=ctx.get("trade"), attempts=out.attempts)
        else:
            self.alerts.alert_system_error(
                error_type, f"{out.error} after {out.attempts} attempt(s). Manual intervention may be required.",
                severity=sev, symbol=ctx.get("symbol"), ticket=ctx.get("ticket"),
            )


def _describe(e: BaseException) -> str:
    text = str(e)
    return redact_secrets(f"{type(e).__name__}: {text}" if text else type(e).__name__)


def _clean(v: Any) -> Any:
    """JSON-safe and secret-free: plain values stay, anything else (numpy scalars, models) becomes text."""
    if isinstance(v, str):
        return redact_secrets(v)
    if isinstance(v, (bool, int, float, type(None))) and type(v) in (bool, int, float, type(None)):
        return v
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    item = getattr(v, "item", None)  # numpy scalar -> python scalar
    if callable(item):
        try:
            return _clean(item())
        except (TypeError, ValueError):
            pass
    return redact_secrets(str(v))
