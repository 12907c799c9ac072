"""The platform-neutral command layer: chat text and button payloads in, neutral `Reply`s out.

Telegram, Discord and the console are thin adapters over this one class, so a command behaves the same
everywhere and is tested once. It never raises: bad input becomes a usage line, a `UserFacingError` its
message, and anything unexpected a short apology with an error id that is logged with the traceback
(and reported to the ErrorHandler when the service has one) — a trader never sees a stack trace.
Authorization is decided by core (`TradingService.authorize`); this layer only asks before acting so
a viewer gets a card without buttons rather than a refusal.
"""
from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot import confirmations, presenter
from bot import service_facts as facts
from bot.backtest_command import BacktestCommand
from bot.card_chart import CardCharts
from bot.chart import render_alert_chart
from bot.command_spec import (
    ACTIONS,
    CONTROL_CHARS_REPLY,
    NO_ARGS,
    USAGE,
    Service,
    has_control_chars,
    parse_command,
)
from bot.command_spec import clip as _clip
from bot.command_spec import maybe_await as _maybe
from bot.live_line import live_line
from bot.progress import ProgressFn
from bot.rate_limit import RateLimiter, refusal_text
from bot.replies import Button, Reply, parse_payload
from core.config.settings import mask_secrets
from core.domain.exceptions import NotAuthorizedError, UserFacingError
from core.domain.models import Alert, AnalysisResult, TradeProposal

__all__ = ["CommandRouter", "parse_command", "Service", "USAGE"]

log = logging.getLogger(__name__)

CHART_BARS = 120
MAX_TRADES = 50
MAX_DAYS = 3650
NOT_A_COMMAND = "I only understand commands: type /help for the list (for example /scalp XAUUSDc)."
_TOKEN_RE = re.compile(r"^[A-Za-z0-9._-]{1,24}$")


class CommandRouter:
    def __init__(
        self,
        service: Service,
        cfg: Any,
        *,
        candles: Callable[[str, str, int], Awaitable[Any]] | None = None,
        chart_dir: Path | None = None,
        report_error: Callable[[BaseException, dict], Any] | None = None,
    ) -> None:
        self.service = service
        self.cfg = cfg
        self._candles = candles
        self.chart_dir = chart_dir
        self._report_error = report_error
        self._refused: set[Any] = set()
        self.backtest = BacktestCommand(self)  # CPU-heavy: a worker thread, one at a time, progress edits
        self._charts = CardCharts()
        self.rate_limit = RateLimiter()
        self._handlers: dict[str, Callable[[Any, list[str]], Awaitable[Reply]]] = {
            "scalp": self._scalp,
            "status": self._status,
            "trades": self._trades,
            "close": self._close,
            "pause": self._pause,
            "resume": self._resume,
            "emergency": self._emergency,
            "metrics": self._metrics,
            "config": self._config,
            "health": self._health,
            "help": self._help,
            "start": self._help,
            "backtest": self.backtest,
        }

    # ---------------------------------------------------------------- entry points
    async def handle_text(self, text: str, user_id: Any, *, progress: ProgressFn | None = None) -> Reply | None:
        """Answer one chat message. None means: say nothing (a repeat from a refused stranger).

        `progress` is where a long command (/backtest) posts "…40%" texts while it works; the adapter
        shows the first and edits it with the rest. Commands that finish quickly never call it.
        """
        async def dispatch(text: str, user_id: Any) -> Reply:
            return await self._dispatch_text(text, user_id, progress)

        return await self._guard(dispatch, text, user_id, context={"text": _clip(str(text), 80)})

    async def handle_callback(self, payload: str, user_id: Any) -> Reply | None:
        """Answer one button tap; the reply is an edit of the tapped message (or a toast)."""
        return await self._guard(self._dispatch_callback, payload, user_id, context={"payload": _clip(str(payload), 80)})

    # ---------------------------------------------------------------- plumbing
    async def _guard(self, fn, arg, user_id, context: dict) -> Reply | None:
        reply = await self._guarded(fn, arg, user_id, context)
        if reply is not None:  # a secret typed back at us (or in an error text) is not echoed to the chat
            reply.text = mask_secrets(reply.text)
            reply.toast = mask_secrets(reply.toast) if reply.toast else reply.toast
        return reply

    async def _guarded(self, fn, arg, user_id, context: dict) -> Reply | None:
        try:
            gate = self._gate(user_id)
            if gate is not False:
                return gate
            return await fn(arg, user_id)
        except UserFacingError as e:
            kind = "refusal" if isinstance(e, NotAuthorizedError) else "error"
            return Reply(text=e.message, kind=kind, ephemeral=True, toast=e.message[:190])
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the last line of defence: log it, apologise, never leak a traceback
            err_id = uuid.uuid4().hex[:8]
            log.exception("chat command failed (error id %s, user %s, %s)", err_id, user_id, context)
            if self._report_error is not None:
                try:
                    await _maybe(self._report_error(e, {"error_id": err_id, "user_id": user_id, **context}))
                except Exception:
                    log.exception("error handler failed for error id %s", err_id)
            text = f"Sorry, something went wrong on my side (error id {err_id}). It has been logged."
            return Reply(text=text, kind="error", ephemeral=True, error_id=err_id, toast=text[:190])

    def _gate(self, user_id: Any) -> Reply | None | bool:
        """Strangers get one polite refusal, then silence; every attempt is logged by core."""
        try:
            self.service.authorize(user_id, "read")
        except NotAuthorizedError as e:
            if user_id in self._refused:
                log.info("ignoring repeat attempt from unauthorized user %s", user_id)
                return None
            self._refused.add(user_id)
            text = _stranger_refusal(e.message, user_id)
            return Reply(text=text, kind="refusal", ephemeral=True, toast=text[:190])
        return False

    def precheck(self, command: str, user_id: Any) -> Reply | None:
        """A refusal decided before any work (for adapters that must pick public vs private up front)."""
        action = ACTIONS.get(command, "read")
        try:
            self.service.authorize(user_id, action)
        except NotAuthorizedError as e:
            text = e.message if self._can(user_id, "read") else _stranger_refusal(e.message, user_id)
            return Reply(text=text, kind="refusal", ephemeral=True)
        except Exception:  # let the full command path report it properly
            return None
        return None

    def _can(self, user_id: Any, action: str) -> bool:
        try:
            self.service.authorize(user_id, action)
            return True
        except NotAuthorizedError:
            return False

    def _digits(self, symbol: str | None) -> int:
        spec = self.cfg.symbols.get(symbol) if symbol else None
        return spec.digits if spec is not None else 2

    def _symbol(self, text: str) -> str:
        if has_control_chars(text) or any(ch in text for ch in "\t\n\r"):
            raise UserFacingError(CONTROL_CHARS_REPLY)
        text = _plain(text)
        name = self.cfg.resolve_symbol(text) if _TOKEN_RE.fullmatch(text) else None
        if name is None:
            raise self.cfg.unknown_symbol(_clip(text))
        return name

    @staticmethod
    def _int(text: str, lo: int, hi: int) -> int | None:
        if not re.fullmatch(r"\d{1,19}", text):
            return None
        v = int(text)
        return v if lo <= v <= hi else None

    def knows(self, word: str) -> bool:
        """Whether `word` (no slash) names a command: the console lets a trader leave the slash off."""
        return word.lower() in self._handlers or word.lower() in ("approve", "reject")

    async def _dispatch_text(self, text: str, user_id: Any, progress: ProgressFn | None = None) -> Reply:
        if has_control_chars(text):  # first: a NUL or an escape code never reaches symbol matching or the log
            return Reply(text=CONTROL_CHARS_REPLY, kind="usage")
        parsed = parse_command(text)
        if parsed is None:
            return Reply(text=NOT_A_COMMAND, kind="usage")
        name, args = parsed
        handler = self._handlers.get(name)
        if handler is None:
            if name in ("approve", "reject"):
                return Reply(text=USAGE["approve"], kind="usage")
            return Reply(text=f"Unknown command /{_clip(name, 20)}. Try /help.", kind="usage")
        if name in NO_ARGS and args:
            return Reply(text=f"/{name} takes no arguments. Try /help.", kind="usage")
        wait = self.rate_limit.retry_after(user_id, name)  # /scalp, /backtest only; never /close, /emergency…
        if wait > 0:
            return Reply(text=refusal_text(name, wait), kind="refusal", ephemeral=True)
        try:
            if handler is self.backtest:
                reply = await self.backtest(user_id, args, progress)
            else:
                reply = await handler(user_id, args)
        except UserFacingError:
            self.rate_limit.refund(user_id, name)  # bad input did no analysis work: it does not count
            raise
        if reply.kind != "ok":  # a usage line, "a backtest is already running": no analysis work was done
            self.rate_limit.refund(user_id, name)
        return reply

    # ---------------------------------------------------------------- commands
    async def _scalp(self, user_id: Any, args: list[str]) -> Reply:
        if len(args) != 1:
            return Reply(text=USAGE["scalp"], kind="usage")
        symbol = self._symbol(args[0])
        proposals: list[TradeProposal] = []
        if self._can(user_id, "propose"):
            analysis, proposals = await self.service.propose(symbol)
        else:
            self.service.authorize(user_id, "analyse")
            analysis = await self.service.assess(symbol)
        return await self.card(analysis, proposals)

    async def card(self, analysis: AnalysisResult, proposals: list[TradeProposal]) -> Reply:
        """The /scalp card (text, chart, Approve/Reject per proposal); the MCP front end posts the same one."""
        symbol = analysis.symbol
        digits = self._digits(symbol)
        blocked = facts.entries_blocked(self.service) if proposals else None
        text = presenter.analysis_card(analysis, digits, proposals, blocked=blocked,
                                       offer_seconds=self.cfg.for_symbol(symbol).execution.proposal_expiry_seconds)
        if hasattr(self.service, "live_quote"):  # the analysis may be the bar's shared one: the quote is not
            text += "\n" + live_line(await _maybe(self.service.live_quote(analysis)), digits)
        by_strategy = {p.strategy.strategy + p.strategy.direction.value: p for p in proposals}
        rows: list[list[Button]] = []
        for i, s in enumerate(analysis.strategies[:5], 1):
            p = by_strategy.get(s.strategy + s.direction.value)
            if p is None or not s.viable:
                continue
            rows.append([
                Button(presenter.button_label("approve", i, s), f"a:{p.id}", "success"),
                Button(presenter.button_label("reject", i, s), f"r:{p.id}", "danger"),
            ])
        image = await self._chart(analysis, digits)
        return Reply(text=text, buttons=rows, image=image, image_name=f"{symbol}_{int(analysis.as_of)}.png")

    async def _chart(self, analysis: AnalysisResult, digits: int) -> bytes | None:
        """Best effort (a card without a chart is still useful); one render per symbol and bar, see card_chart."""
        if self._candles is None:
            return None
        return await self._charts.get(analysis, digits, self._candles)

    async def _status(self, user_id: Any, args: list[str]) -> Reply:
        self.service.authorize(user_id, "status")
        rows = await _maybe(self.service.status())
        return Reply(text=presenter.status_text(list(rows), self._digits, now=self._now(),
                                                currency=await facts.account_currency(self.service)))

    def _clock(self) -> Any:
        return confirmations.service_clock(self.service)

    def _check_confirmation(self, check: Callable[..., confirmations.Check], ref: str) -> confirmations.Check:
        """Judge a confirm tap on the service clock (the replay clock in paper runs), like proposals."""
        clock = self._clock()
        speed = float(getattr(clock, "speed", 1.0) or 1.0)
        result = check(ref, float(clock.now()), confirmations.window_seconds(self.cfg, clock), speed)
        if result.status != "ok":
            log.info("refused %s confirmation %r", result.status, _clip(ref, 60))
        return result

    def _now(self) -> float | None:
        clock = getattr(self.service, "clock", None)
        try:
            return float(clock.now()) if clock is not None else None
        except Exception:
            return None

    async def _trades(self, user_id: Any, args: list[str]) -> Reply:
        if len(args) > 1:
            return Reply(text=USAGE["trades"], kind="usage")
        n = 5 if not args else self._int(args[0], 1, MAX_TRADES)
        if n is None:
            return Reply(text=USAGE["trades"], kind="usage")
        self.service.authorize(user_id, "trades")
        trades = await _maybe(self.service.recent_trades(n))
        return Reply(text=presenter.trades_text(list(trades), self._digits,
                                                currency=await facts.account_currency(self.service)))

    async def _close(self, user_id: Any, args: list[str]) -> Reply:
        ticket = self._int(args[0], 1, 2**63 - 1) if len(args) == 1 else None
        if ticket is None:
            return Reply(text=USAGE["close"], kind="usage")
        self.service.authorize(user_id, "close")
        rows = await _maybe(self.service.status())
        match = next((r for r in rows if getattr(getattr(r, "trade", r), "ticket", None) == ticket), None)
        if match is None:
            return Reply(text=f"No open trade with ticket {ticket}. See /status.", kind="error")
        trade = getattr(match, "trade", match)
        desc = f"#{ticket} {trade.symbol} {trade.direction.value} {trade.volume:g} lot"
        return Reply(
            text=f"Close {desc} at market now?",
            buttons=[[Button(f"Yes, close #{ticket}", confirmations.close_payload(ticket, self._clock().now()), "danger"),
                      Button("Cancel", "x:close")]],
        )

    async def _pause(self, user_id: Any, args: list[str]) -> Reply:
        res = await _maybe(self.service.pause(user_id))
        return Reply(text=facts.said(res, "⏸ Paused: no new trades until /resume. Open trades are still managed."))

    async def _resume(self, user_id: Any, args: list[str]) -> Reply:
        res = await _maybe(self.service.resume(user_id))
        return Reply(text=facts.said(res, "▶️ Resumed: new trades allowed."))

    async def _emergency(self, user_id: Any, args: list[str]) -> Reply:
        self.service.authorize(user_id, "emergency")
        return Reply(
            text="🚨 Emergency stop: close ALL open range scalps at market and pause trading?",
            buttons=[[Button("Yes, close all", confirmations.emergency_payload(self._clock().now()), "danger"),
                      Button("Cancel", "x:emergency")]],
        )

    async def _metrics(self, user_id: Any, args: list[str]) -> Reply:
        if len(args) > 1:
            return Reply(text=USAGE["metrics"], kind="usage")
        days = None if not args else self._int(args[0], 1, MAX_DAYS)
        if args and days is None:
            return Reply(text=USAGE["metrics"], kind="usage")
        self.service.authorize(user_id, "metrics")
        report = await _maybe(self.service.metrics(days))
        return Reply(text=presenter.metrics_text(report, days, currency=await facts.account_currency(self.service)))

    async def _config(self, user_id: Any, args: list[str]) -> Reply:
        if len(args) > 1:
            return Reply(text=USAGE["config"], kind="usage")
        symbol = self._symbol(args[0]) if args else None
        self.service.authorize(user_id, "config")
        eff = await _maybe(self.service.effective_config(symbol))
        version = getattr(self.service, "config_version", "") or getattr(self.cfg, "version", "")
        return Reply(text=presenter.config_text(eff, str(version), symbol))

    async def _health(self, user_id: Any, args: list[str]) -> Reply:
        self.service.authorize(user_id, "health")
        report = await _maybe(self.service.health())
        return Reply(text=presenter.health_text(report))

    async def _help(self, user_id: Any, args: list[str]) -> Reply:
        return Reply(text=presenter.HELP)

    # ---------------------------------------------------------------- alerts
    async def alert_reply(self, alert: Alert) -> Reply:
        """Alert text, plus a chart for trade/range alerts (exits, invalidations) when candles exist."""
        text = presenter.alert_text(alert)
        image = None
        if alert.symbol and (alert.trade is not None or alert.range_data is not None) and self._candles:
            # a trade is drawn on the bars it was traded on (M5): on the range's own timeframe (H1 for a
            # previous-day range) a whole scalp shrank into the last bar, its labels piled on each other
            tf = (alert.range_data.timeframe if alert.trade is None and alert.range_data is not None
                  else self._default_tf(alert.symbol))
            try:
                candles = await self._candles(alert.symbol, tf, CHART_BARS)
                if candles is not None and len(candles):
                    image = await asyncio.to_thread(
                        render_alert_chart, candles, alert, self._digits(alert.symbol)
                    )
            except Exception:
                log.exception("alert chart for %s failed", alert.symbol)
        return Reply(text=text, image=image, image_name=f"alert_{alert.kind}_{int(alert.created_at)}.png")

    def _default_tf(self, symbol: str) -> str:
        try:
            return self.cfg.for_symbol(symbol).range_detection.timeframe
        except Exception:
            return "M5"

    # ---------------------------------------------------------------- buttons
    async def _dispatch_callback(self, payload: str, user_id: Any) -> Reply:
        parsed = parse_payload(payload)
        if parsed is None:
            log.warning("garbage callback payload from user %s: %r", user_id, _clip(str(payload), 80))
            return _invalid_button()
        kind, ref = parsed
        if kind in ("a", "r"):
            fn = self.service.approve if kind == "a" else self.service.reject
            outcome = await fn(ref, user_id)
            text = presenter.outcome_text(outcome, self._digits(facts.outcome_symbol(outcome)))
            keep = ref if kind == "r" else None
            return Reply(text=text, edit=True, keep_buttons_except=keep, toast=text.splitlines()[0][:190])
        if kind == "c":
            self.service.authorize(user_id, "close")
            check = self._check_confirmation(confirmations.check_close, ref)
            if check.status == "malformed" or check.ticket is None:
                return _invalid_button()
            ticket = check.ticket
            if check.status == "expired":
                return _expired(f"/close {ticket}")
            outcome = await self.service.close_trade(ticket, user_id)
            text = presenter.outcome_text(outcome)
            return Reply(text=text, edit=True, toast=text.splitlines()[0][:190])
        if kind == "e":
            self.service.authorize(user_id, "emergency")
            check = self._check_confirmation(confirmations.check_emergency, ref)
            if check.status == "malformed":
                return _invalid_button()
            if check.status == "expired":
                return _expired("/emergency")
            res = await self.service.emergency(user_id)
            text = facts.said(res, "🚨 Emergency stop done: positions closed, trading paused.")
            return Reply(text=text, edit=True, toast=text[:190])
        # Cancel wipes the confirmation: only someone who may do the action may call it off
        self.service.authorize(user_id, ACTIONS.get(ref, "read"))
        return Reply(text="Cancelled.", edit=True, toast="Cancelled.")


def _plain(text: str) -> str:
    """What the trader meant to type: phone keyboards and copy-paste add zero-width spaces, direction marks
    and full-width letters (ＸＡＵＵＳＤｃ) that made 'XAUUSDc' unknown while the reply echoed 'XAUUSDc'."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if unicodedata.category(ch) != "Cf")


def _stranger_refusal(message: str, user_id: Any) -> str:
    """The allowlist refusal with the asker's own id, to copy into .env: safe to show, it is their own."""
    return (f"{message}\nYour user id is {user_id}. To use this bot, add it to MONEYBOT_TRADER_USER_IDS "
            "(or MONEYBOT_VIEWER_USER_IDS to only read) in .env, then restart MoneyBot.")


def _expired(command: str) -> Reply:
    """Replace the stale card (its buttons go with it) so the same old tap cannot be tried again."""
    text = confirmations.expired_text(command)
    return Reply(text=text, kind="error", edit=True, toast=text)


def _invalid_button() -> Reply:
    text = "That button is not valid any more. Run the command again."
    return Reply(text=text, kind="error", ephemeral=True, toast=text)
