"""Sending an approved order and recording it exactly once: the retry policy, the ambiguous answer, the record.

Split from `core.trading.execution`, which decides whether a proposal may trade; this part starts once the
proposal is `executing`. Only refusals that prove the order was NOT taken are retried (with a fresh price
that must pass the slippage check again); a timeout or a lost connection is never resent: the broker is
asked for the proposal id instead. A fill, its registration and the 'opened' journal entry are one store
transaction (`Store.record_open`). `OrderSending` is a mixin of `ExecutionEngine` and uses its state
(cfg, store, broker, exits, notify, clock, offload, `_fail`, `_refuse_price`, `symbol_info`, `note_unconfirmed`).
"""
from __future__ import annotations

import logging

from core.brokers.base import BrokerConnectionError, BrokerError, BrokerTimeoutError, OrderRequest
from core.brokers.tags import find_proposal_at_broker
from core.domain.models import ActiveTrade, ProposalState, TradeProposal
from core.domain.retry import attempts_of, run_async
from core.domain.wording import symbol_price
from core.ops.alert_texts import trade_label
from core.store import ProposalConflict, TradeMetadata
from core.trading.order_checks import tick_problem, validate_entry_price
from core.trading.proposal_outcome import ProposalOutcome

log = logging.getLogger(__name__)


class _NotAtBroker(Exception):
    """An unconfirmed order's look-up found nothing yet (retried under the policy, never resent)."""


class OrderSending:
    """The send-and-record half of `ExecutionEngine` (see the module docstring)."""

    async def _send_and_record(self, p: TradeProposal, request: OrderRequest, notes: list[str]) -> ProposalOutcome:
        """4. the order (with the order_execution_fails retry policy), 5. record it — exactly once.

        Only refusals that prove the order was NOT taken (requote, price changed, too many requests) are
        retried, with a fresh price that must still pass the slippage check. A timeout or a lost
        connection is ambiguous (the order may have been filled): it is never resent; the broker is
        asked for the proposal id instead, and an order that shows up later is adopted by the monitor.
        """
        tcfg = self.cfg.for_symbol(p.symbol)
        policy = tcfg.error_handling.get("order_execution_fails")
        # max_retries = total attempts (core.domain.retry). A broker that applies the policy itself (MT5:
        # re-price, back off, reconcile before any resend) is called once: no retry loop around a retry loop
        own = getattr(self.broker, "applies_order_policy", False)
        retrying = policy is not None and policy.action == "retry_execution" and not own
        attempts = attempts_of(policy.max_retries) if retrying else 1
        sending: dict = {"request": request}

        async def send(i: int):
            sending["attempt"] = i
            return await self.offload(self.broker.market_order, sending["request"])

        async def before_resend(_: BaseException) -> ProposalOutcome | None:
            refreshed = await self._refresh_price(p, sending["request"])
            if isinstance(refreshed, ProposalOutcome):
                return refreshed
            sending["request"] = refreshed
            blocked = self.notify.entries_blocked()  # after the awaits: nothing between it and the send
            if blocked:  # a refused attempt sent nothing: a pause since then stops the resend
                return self._fail(p, ProposalState.EXECUTING, f"{blocked} Nothing was traded.")
            return None

        def log_refusal(i: int, e: BaseException) -> None:
            log.warning("order for %s attempt %d/%d failed: %s", p.id, i + 1, attempts, e)

        try:
            res = await run_async(
                attempts, policy.retry_interval if policy else 0, send, sleep=self._sleep, retry_on=(BrokerError,),
                # a timeout or a lost connection is ambiguous (the order may be filled): never resent
                retry_if=lambda e, _n: e.retryable and not isinstance(e, (BrokerTimeoutError, BrokerConnectionError)),
                on_retry=log_refusal, before_retry=before_resend)
        except (BrokerTimeoutError, BrokerConnectionError) as e:
            return await self._unconfirmed(p, e)
        except BrokerError as e:
            log_refusal(sending.get("attempt", 0), e)
            return self._refused(p, e.message)
        if isinstance(res, ProposalOutcome):  # a resend stopped before it was sent (price gone, paused)
            return res
        request = sending["request"]
        # the position IDENTIFIER the fill landed in (from its deals), never the order ticket: on a netting
        # account an order ticket is not a position
        ticket = int(res.position or res.order)
        try:
            pos = next((x for x in await self.offload(self.broker.positions, p.symbol, request.magic)
                        if x.key == ticket), None)
        except BrokerError:
            pos = None
        fill = float(res.price or (pos.price_open if pos else request.price or 0.0))
        # the filled volume, not the asked one (IOC may fill part): a close is journalled only once its
        # deals add up to the trade's volume
        volume = pos.volume if pos else float(res.volume or request.volume)
        trade = self._trade_from(p, ticket, fill, pos.sl if pos else request.sl, pos.tp if pos else request.tp,
                                 volume, pos.time if pos and pos.time else self.clock.now(), request.comment)
        return self._record_open(p, trade, notes)

    def _refused(self, p: TradeProposal, last_error: str) -> ProposalOutcome:
        msg = f"The broker refused the order ({last_error}); nothing was traded."
        self.notify.error("execution_failed_after_approval", msg, alert=False, symbol=p.symbol, proposal_id=p.id)
        self.notify.alert("execution_failed", "high", f"{p.symbol}: order not placed", msg, symbol=p.symbol,
                          dedup_key=f"execution_failed:{p.id}")
        return self._fail(p, ProposalState.EXECUTING, msg)

    async def _refresh_price(self, p: TradeProposal, request: OrderRequest) -> OrderRequest | ProposalOutcome:
        ex = self.cfg.for_symbol(p.symbol).execution
        info = await self.symbol_info(p.symbol)
        try:
            tick = await self.offload(self.broker.tick, p.symbol)
        except BrokerError as e:
            return self._fail(p, ProposalState.EXECUTING,
                              f"I lost the price for {p.symbol} while retrying ({e.message}); nothing was traded.")
        if bad := tick_problem(tick, self.clock.now()):
            return self._refuse_price(p, ProposalState.EXECUTING, f"I did not trade: {bad}.")
        check = validate_entry_price(p.strategy.direction, p.strategy.entry, tick.bid, tick.ask,
                                     ex.max_entry_slippage_pct, info.digits)
        if not check.ok:
            return self._refuse_price(p, ProposalState.EXECUTING, check.message)
        return request.model_copy(update={"price": check.current_price})

    async def _unconfirmed(self, p: TradeProposal, err: BrokerError) -> ProposalOutcome:
        # the order_execution_fails policy: max_retries look-ups (total), retry_interval apart; never a resend
        pol = self.cfg.for_symbol(p.symbol).error_handling.get("order_execution_fails")

        async def look(_: int) -> ProposalOutcome:
            try:
                found = await self.resolve_at_broker(p)
            except BrokerError:
                found = None
            if found is None:
                raise _NotAtBroker
            return found

        try:
            return await run_async(pol.max_retries if pol else 2, pol.retry_interval if pol else 1.0, look,
                                   sleep=self._sleep, retry_on=(_NotAtBroker,))
        except _NotAtBroker:
            pass
        msg = (f"The broker did not confirm the {p.symbol} order ({err.message}). I did not resend it, to avoid a "
               "double position; if it appears in MetaTrader I will adopt and monitor it.")
        self.notify.error("execution_failed_after_approval", msg, alert=False, symbol=p.symbol, proposal_id=p.id)
        self.notify.alert("execution_unconfirmed", "high", f"{p.symbol}: order not confirmed", msg, symbol=p.symbol,
                          dedup_key=f"execution_unconfirmed:{p.id}")
        self.note_unconfirmed(p.id)
        return self._fail(p, ProposalState.EXECUTING, msg)

    def _trade_from(self, p: TradeProposal, ticket: int, fill: float, sl: float, tp: float, volume: float,
                    entry_time: float, comment: str) -> ActiveTrade:
        s = p.strategy
        meta = TradeMetadata.dump_from_proposal(p)
        return ActiveTrade(
            ticket=ticket, proposal_id=p.id, symbol=p.symbol, strategy=s.strategy, direction=s.direction,
            entry_price=fill, sl=sl, tp=tp, initial_sl=sl, volume=volume, entry_time=float(entry_time),
            range_data=p.analysis.range, magic=self.cfg.for_symbol(p.symbol).execution.magic_number,
            comment=comment, metadata=meta,
        )

    def _record_open(self, p: TradeProposal, trade: ActiveTrade, notes: list[str]) -> ProposalOutcome:
        try:
            saved = self.store.record_open(trade, metadata=trade.metadata, data={"notes": notes})
        except ProposalConflict:
            return self.outcome_of(self.store.proposals.get(p.id), duplicate=True)
        self.exits.register_trade(saved, persisted=True)
        s = p.strategy

        side = s.direction.value.upper()
        sl, tp = symbol_price(self.cfg, p.symbol, trade.sl), symbol_price(self.cfg, p.symbol, trade.tp)
        text = (f"{side} {trade.volume:g} {p.symbol} at {symbol_price(self.cfg, p.symbol, trade.entry_price)} "
                f"(SL {sl}, TP {tp}), ticket {trade.ticket}, strategy {s.strategy}.")
        detail = f"{side} {trade.volume:g} {p.symbol} · SL {sl} · TP {tp}"
        if notes:
            text += " " + "; ".join(notes) + "."
            detail += "\n" + "; ".join(notes)
        self.notify.alert("trade_opened", "info", f"{trade_label(saved)} opened", text, symbol=p.symbol,
                          ticket=trade.ticket, trade=saved, range_data=trade.range_data)
        # what the row now says, without reading its whole analysis back: record_open's move to EXECUTED won
        # (else ProposalConflict) and set these fields; EXECUTED is terminal and a proposal is never deleted
        # (the outcome built once with its message: no copy of the proposal, no second outcome)
        return ProposalOutcome(proposal_id=p.id, state=ProposalState.EXECUTED, ok=True, message="Executed: " + text,
                               ticket=saved.ticket, fill_price=saved.entry_price, symbol=p.symbol,
                               strategy=s.strategy, detail=detail)

    async def resolve_at_broker(self, p: TradeProposal) -> ProposalOutcome | None:
        """If the broker has this proposal's order, record it (exactly once) and return the outcome."""
        magic = self.cfg.for_symbol(p.symbol).execution.magic_number
        pos, deals = await self.offload(find_proposal_at_broker, self.broker, p.id, magic, p.created_at - 1)
        if pos is not None:
            trade = self._trade_from(p, pos.key, pos.price_open, pos.sl, pos.tp, pos.volume,
                                     pos.time or self.clock.now(), pos.comment)
            return self._record_open(p, trade, ["found at the broker after an interrupted send"])
        entry = next((d for d in deals if d.entry == "in"), None)
        if entry is None:
            return None
        # opened and already closed (e.g. SL hit while we were down): record both ends
        trade = self._trade_from(p, entry.position_id, entry.price, 0.0, 0.0, entry.volume, entry.time, entry.comment)
        sl, tp = p.strategy.stop_loss, p.strategy.take_profit
        trade = trade.model_copy(update={"sl": sl, "tp": tp, "initial_sl": sl})
        out = self._record_open(p, trade, ["found in the broker's history after an interrupted send"])
        return out
