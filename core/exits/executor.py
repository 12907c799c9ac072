"""Closing a range scalp at the broker, and reading how it closed from the deal history.

Exit orders follow the `exit_order_fails` policy: retry with a deviation that widens on each attempt
up to `max_slippage_pct` of price, then give up and let the caller raise an exit-failed alert. The
broker-side SL is never touched here, so a position whose exit failed is still protected.

How a close is journalled lives in `core.exits.deals`; how our orders are marked at the broker, in
`core.brokers.tags`.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pydantic import BaseModel

from core.brokers.base import (
    Broker,
    BrokerError,
    CloseOrderExistsError,
    FrozenError,
    MarketClosedError,
    PositionNotFoundError,
    RefusedError,
    StaleQuoteError,
)
from core.brokers.tags import EXIT_TAG_MAX, order_comment
from core.domain.models import ActiveTrade, ClosedTrade
from core.domain.retry import attempts_of, run_async
from core.domain.wording import symbol_price
from core.exits.deals import closed_trade_from_deals
from core.ops import alert_texts
from core.ops.notify import REMINDER_SECONDS

log = logging.getLogger(__name__)
CURRENCY_KEY = "account_currency"  # the store's kv entry `moneybot trades` prints money with

# refusals for want of a live price (weekend, session break), or inside the freeze distance of the SL/TP
# (10029 FROZEN: "not now"): a retry at once or a wider deviation cannot help, and they are no fault (they
# must not count toward the auto-disable); the monitor tries again next cycle
NO_MARKET = (MarketClosedError, StaleQuoteError, FrozenError)
# refusals a resend cannot change (FIFO order, close only, a close already working): said once, not retried
FINAL = (RefusedError, CloseOrderExistsError)


class ExitAttempt(BaseModel):
    deviation: int
    error: str = ""
    code: int | None = None


class ExitOrderOutcome(BaseModel):
    ticket: int
    ok: bool
    already_closed: bool = False  # the broker had closed it (SL/TP) before our order arrived
    in_flight: bool = False  # nothing sent: another exit of this trade is running (its result is the answer)
    market_closed: bool = False  # refused for want of a live price (weekend, session break): not a fault
    price: float = 0.0
    attempts: list[ExitAttempt] = []
    message: str = ""


Sleep = Callable[[float], Awaitable[None]]


def _deviations(base: int, max_points: int, attempts: int) -> list[int]:
    if attempts <= 1:
        return [max(base, 0)]
    hi = max(max_points, base)
    return [int(round(base + (hi - base) * i / (attempts - 1))) for i in range(attempts)]


async def close_with_policy(
    broker: Broker,
    trade: ActiveTrade,
    *,
    policy,
    base_deviation: int,
    point: float,
    price_hint: float,
    reason_tag: str = "x",
    sleep: Sleep = asyncio.sleep,
    offload=None,
) -> ExitOrderOutcome:
    """Close `trade` at market under the `exit_order_fails` policy (an `ErrorPolicy`).

    `policy.max_retries` is the total number of attempts (`core.domain.retry.attempts_of`, as everywhere):
    the issue's "exit order failing three times raises an exit-failed alert" is three sends, the last one at
    the widest allowed deviation. Each attempt re-reads the position, so a 10038 (volume changed) is resent
    with the position's exact volume, never a guessed one.
    """
    attempts_n = attempts_of(policy.max_retries)
    max_pct = policy.max_slippage_pct or 0.0
    max_points = int(price_hint * max_pct / 100 / point) if point > 0 and price_hint > 0 else base_deviation
    outcome = ExitOrderOutcome(ticket=trade.ticket, ok=False)
    comment = order_comment(trade.proposal_id, reason_tag)
    devs = _deviations(base_deviation, max_points, attempts_n)
    offload = offload or asyncio.to_thread  # as ExitExecutor's

    async def attempt(i: int) -> ExitOrderOutcome:
        dev = devs[i]
        try:
            res = await offload(broker.close_position, trade.ticket, None, dev, comment)
        except PositionNotFoundError as e:
            outcome.attempts.append(ExitAttempt(deviation=dev, error=str(e), code=e.code))
            outcome.already_closed = True
            outcome.message = "the position was already closed at the broker"
            raise _Settled from None
        except BrokerError as e:
            outcome.attempts.append(ExitAttempt(deviation=dev, error=e.message, code=e.code))
            log.warning("exit %s attempt %d/%d (deviation %d) failed: %s", trade.ticket, i + 1, attempts_n, dev, e)
            if isinstance(e, NO_MARKET):
                outcome.market_closed = True
                outcome.message = (f"not now ({e.message})" if isinstance(e, FrozenError)
                                   else f"the market is closed ({e.message})")
                raise _Settled from None
            if isinstance(e, FINAL):
                outcome.message = f"the broker refused the close: {e.message}"
                raise _Settled from None
            raise
        outcome.attempts.append(ExitAttempt(deviation=dev))
        outcome.ok = True
        outcome.price = float(res.price)
        outcome.message = f"closed at {res.price:g}"
        return outcome

    try:  # the one retry loop (core.domain.retry), as every policy
        return await run_async(attempts_n, policy.retry_interval or 0.0, attempt, sleep=sleep,
                               retry_on=(BrokerError,))
    except _Settled:
        return outcome
    except BrokerError:
        last = outcome.attempts[-1].error if outcome.attempts else "unknown error"
        outcome.message = f"the broker refused the close {attempts_n} time(s) (last: {last})"
        return outcome


class _Settled(Exception):
    """Inside the exit retry loop: the outcome is final (closed meanwhile, no market, a refusal a resend
    cannot change); stop without another attempt."""


class ExitExecutor:
    """Closes trades and records closes (ours or the broker's) in the store, the registry and the alerts.

    Shared by the monitor (signals, SL/TP hits), the chat's /close and /emergency, and start-up
    recovery, so a close is journalled the same way whoever caused it.
    """

    def __init__(self, cfg, broker: Broker, store, exits, notifier, sleep: Sleep = asyncio.sleep,
                 offload=None) -> None:
        """`offload`: how a blocking broker call is awaited, `asyncio.to_thread` unless a replay drives the
        exits on its own loop (core.backtest.replay_loop.inline)."""
        self.cfg = cfg
        self.offload = offload or asyncio.to_thread
        self.broker = broker
        self.store = store
        self.exits = exits
        self.notify = notifier
        self._sleep = sleep
        self._closing: set[int] = set()
        self._currency: str | None = None  # the account's, asked once (a cent account's 1.00 is one cent)
        # closes handed to the journal (Store.record_close, whose only caller this class is), counted before
        # each write: a reader of the journal (the backtest's replay) re-reads it only when this moved
        self.closes_recorded = 0

    async def _money(self, amount: float) -> str:
        if self._currency is None:
            try:
                self._currency = (await self.offload(self.broker.account_info)).currency or ""
            except Exception:  # noqa: BLE001 - a sentence without its unit beats a close without an alert
                return f"{amount:+.2f}"
            if self._currency:  # kept for `moneybot trades`, which reads the store without a broker
                try:
                    self.store.kv.set(CURRENCY_KEY, self._currency)
                except Exception:  # noqa: BLE001 - the unit is a nicety, the close is not
                    log.warning("could not record the account currency", exc_info=True)
        return f"{amount:+.2f} {self._currency}".rstrip()

    def closing(self, ticket: int) -> bool:
        """True while an exit order for `ticket` is in flight."""
        return ticket in self._closing

    async def close(self, trade: ActiveTrade, kind: str, reason: str, price_hint: float = 0.0) -> ExitOrderOutcome:
        """Send the exit (policy retries), then journal it from the deals; alert on failure."""
        if trade.ticket in self._closing:
            return ExitOrderOutcome(ticket=trade.ticket, ok=False, in_flight=True,
                                    message="an exit for this trade is already in flight")
        self._closing.add(trade.ticket)
        try:
            return await self._close(trade, kind, reason, price_hint)
        finally:
            self._closing.discard(trade.ticket)

    async def _close(self, trade: ActiveTrade, kind: str, reason: str, price_hint: float) -> ExitOrderOutcome:
        tcfg = self.cfg.for_symbol(trade.symbol)
        policy = tcfg.error_handling.get("exit_order_fails")
        try:
            point = (await self.offload(self.broker.symbol_info, trade.symbol)).point
        except BrokerError:  # the close itself will say what is wrong; the point only sizes the deviation
            spec = self.cfg.symbols.get(trade.symbol)
            point = spec.point if spec else 0.0
        from core.exits.manager import TradeNotRegistered

        try:
            trade = self.exits.update_trade_state(trade.ticket, {"exit_manager_state": "exiting"})
        except TradeNotRegistered:
            return ExitOrderOutcome(ticket=trade.ticket, ok=False, already_closed=True,
                                    message="the trade was already closed and journalled")
        except Exception:  # noqa: BLE001 - bookkeeping only: the close must still go out
            log.exception("could not mark %s as exiting; closing it anyway", trade.ticket)
        outcome = await close_with_policy(
            self.broker, trade, policy=policy, base_deviation=tcfg.execution.deviation_points, point=point,
            price_hint=price_hint or trade.entry_price, reason_tag=kind[:EXIT_TAG_MAX], sleep=self._sleep,
            offload=self.offload,
        )
        if outcome.ok or outcome.already_closed:
            try:
                await self.record_broker_close(trade, reason_kind=kind, reason_text=reason)
            except BrokerError as e:  # closed, but the deals are not readable yet: the monitor journals it
                log.warning("closed %s but could not read its deals yet: %s", trade.ticket, e)
            return outcome
        sl_text = (f"its broker-side stop at {symbol_price(self.cfg, trade.symbol, trade.sl)} stays in place"
                   if trade.sl else "it has NO broker-side stop")
        todo = ("I try again every cycle and close it when trading resumes" if outcome.market_closed
                else "Please close it manually in MetaTrader")
        # what to do first: a lock screen shows the first line only
        text = (f"{todo}; {sl_text}.\nWhy it is still open: {outcome.message}.\n"
                f"Exit wanted: {alert_texts.exit_reason_words(kind)}: {reason}.")
        # the alert first: it asks a human to act, and must not depend on the store being writable
        # the rule fires again each cycle while the close fails (e.g. all weekend): page once, then hourly
        self.notify.alert("exit_failed", "high", f"EXIT FAILED - {alert_texts.trade_label(trade)}", text,
                          symbol=trade.symbol, ticket=trade.ticket, trade=trade, range_data=trade.range_data,
                          dedup_key=f"exit_failed:{trade.ticket}", remind_after=REMINDER_SECONDS)
        if not outcome.market_closed:  # a closed market is no fault: it must not count toward auto-disable
            self.notify.error("exit_order_fails", outcome.message, alert=False, symbol=trade.symbol,
                              ticket=trade.ticket)
        try:
            self.exits.update_trade_state(
                trade.ticket, {"exit_manager_state": "exit_failed"},
                journal=("exit_failed", {"kind": kind, "reason": reason,
                                         "attempts": [a.model_dump() for a in outcome.attempts]}),
            )
        except Exception:  # noqa: BLE001 - TradeNotRegistered (closed meanwhile) or a store failure
            log.exception("could not record the failed exit of %s", trade.ticket)
        return outcome

    async def record_broker_close(self, trade: ActiveTrade, reason_kind: str | None = None,
                                  reason_text: str = "") -> ClosedTrade | None:
        """Journal a position that is no longer open, from its deals; None if the deals are not there yet."""
        deals = await self.offload(self.broker.history_deals, trade.ticket, None)
        closed = closed_trade_from_deals(trade, deals, reason=reason_kind)
        if closed is None:
            return None
        detail = reason_text  # the alert says in words whose exit it was (alert_texts), the journal keeps codes
        if reason_kind and reason_text and closed.exit_reason != reason_kind:
            # our close found the position gone: the broker's SL/TP (or a stop-out) got there first, and
            # the text must not read as if the stop had fired for our exit's reason
            reason_text = f"hit at the broker before my {reason_kind} exit went out: {reason_text}"
        self.closes_recorded += 1
        self.store.record_close(closed, data={"reason_text": reason_text} if reason_text else None)
        self.exits.unregister_trade(trade.ticket, persisted=True, exit_time=closed.exit_time,
                                    exit_reason=closed.exit_reason)
        for key in ("exit_failed", "range_invalidated"):  # pages repeated while it could not be closed
            self.notify.clear_reminder(f"{key}:{trade.ticket}")
        pnl = closed.pnl - abs(closed.commission)
        cash = await self._money(pnl)
        text = alert_texts.closed_text(symbol_price(self.cfg, trade.symbol, closed.exit_price), closed.r_multiple,
                                       cash, closed.exit_reason, detail, our_kind=reason_kind, at=closed.exit_time)
        # severity by what happened (a close is news, not a warning); trade news reaches the chats anyway
        self.notify.alert("exit_executed", alert_texts.CLOSE_SEVERITY,
                          alert_texts.closed_title(trade, closed.r_multiple, cash), text, symbol=trade.symbol,
                          ticket=trade.ticket, trade=trade, range_data=trade.range_data, exit_price=closed.exit_price,
                          dedup_key=f"exit_executed:{trade.ticket}")
        return closed
