"""Approval → execution of a range-scalp proposal, exactly once.

How "exactly once" holds without a shared transaction with the broker (MT5, or the paper broker's
own SQLite file):
1. The proposal moves pending → approved → executing by compare-and-set in the store; only the one
   caller that wins the move to `executing` may send, so a double tap or a replayed callback sends
   nothing. `executing` is committed BEFORE the order leaves.
2. The order comment carries the proposal id (`rs:<id>:<strategy>`).
3. Whoever finds a proposal in `executing` without a result (a retry after a timeout, or start-up
   recovery after a crash) first asks the broker for a position or deal with that comment and adopts
   it; it never sends a second order for the same proposal.
4. Fill, registration and the 'opened' journal entry are written in ONE store transaction
   (`Store.record_open`).

This module decides whether a proposal may trade (state moves, re-entry and position cap, account rules,
price checks); sending the order and recording it is `core.trading.order_send`.
"""
from __future__ import annotations

import asyncio
import logging

from core.brokers.base import (
    Broker,
    BrokerError,
    OrderRequest,
    SymbolInfo,
)
from core.brokers.tags import order_comment
from core.domain.models import (
    AnalysisResult,
    Direction,
    FilterResult,
    ProposalState,
    RangeStructure,
    TradeProposal,
)
from core.exits.manager import RangeScalpingExitManager
from core.store import new_proposal_id
from core.trading.account_rules import account_refusal, with_account_rules
from core.trading.order_checks import (
    adjust_stops,
    normalise_lot,
    order_price_problem,
    tick_problem,
    time_rules_block,
    usable_price,
    validate_entry_price,
)
from core.trading.order_send import OrderSending
from core.trading.proposal_outcome import ProposalOutcome, outcome_of

log = logging.getLogger(__name__)

AUTO_USER = "auto"
# stops level, freeze level, volume step, trade mode and contract size change (rollover, weekends, broker
# decisions): a cached symbol_info is trusted this long (clock seconds), never for the process's life
SYMBOL_INFO_TTL = 60.0


class ExecutionEngine(OrderSending):
    def __init__(self, cfg, store, broker: Broker, exits: RangeScalpingExitManager, notifier, clock, authorizer=None,
                 sleep=asyncio.sleep, offload=None) -> None:
        """`offload`: how a blocking broker call is awaited, `asyncio.to_thread` unless a replay runs the calls
        inline anyway (core.backtest.live, as for the monitor)."""
        self.cfg = cfg
        self.store = store
        self.broker = broker
        self.exits = exits
        self.notify = notifier
        self.clock = clock
        self.authz = authorizer
        self._sleep = sleep
        self.offload = offload or asyncio.to_thread
        self._symbol_info: dict[str, tuple[float, SymbolInfo]] = {}  # symbol -> (read at, info)
        self.in_flight: set[str] = set()  # proposal ids this process is executing right now
        # proposal id -> when it was failed although its order may have reached the broker (unconfirmed,
        # crashed mid-send): `core.exits.late_fills` scans the deal history while these are recent
        self.unconfirmed: dict[str, float] = {}
        # (symbol, range) of orders past the re-entry check but not registered yet: they count as entries
        self._reserved: dict[str, tuple[str, RangeStructure | None]] = {}
        # symbol -> the news calendar the send's blackout check judges by; None (live): the configured
        # calendar through its shared cached source. A replay sets the calendar it read once for the run.
        self.news_calendar = None

    # ---- proposals ------------------------------------------------------------------------------
    def create_proposals(self, analysis: AnalysisResult, only: str | None = None) -> list[TradeProposal]:
        """One pending proposal per viable strategy (none when the analysis did not pass).

        `only`: just the proposal of that strategy (if viable), as it would be among all of them; for a caller
        that decides on one strategy itself (a replay's auto-approver) and would otherwise reject the rest."""
        if not analysis.passed or analysis.range is None:
            return []
        tcfg = self.cfg.for_symbol(analysis.symbol)
        now = self.clock.now()
        # the expiry is a human's decision window: on an accelerated replay clock (paper, speed N) it
        # spans N times as many clock seconds, else a 120 s offer would lapse after 120/N real seconds
        window = tcfg.execution.proposal_expiry_seconds * float(getattr(self.clock, "speed", 1.0) or 1.0)
        out = [
            TradeProposal(id=new_proposal_id(), symbol=analysis.symbol, strategy=s, analysis=analysis,
                          lot=tcfg.execution.lot_size, created_at=now, expires_at=now + window)
            for s in analysis.strategies if s.viable and (only is None or s.strategy == only)
        ]
        return self.store.proposals.create_many(out) if out else out

    def with_reentry_rule(self, analysis: AnalysisResult) -> AnalysisResult:
        """The analysis with the re-entry rule applied, so a card never offers Approve on a range the rules
        forbid (broken during a trade, cooldown, too many entries): the trader sees why up front rather
        than tapping Approve and being told "Not entering". `_execute` checks it again at send time, as a
        trade may close in between."""
        if not analysis.passed or analysis.range is None:
            return analysis
        ex = self.cfg.for_symbol(analysis.symbol).exits
        ok, why = self.exits.check_reentry_allowed(analysis.symbol, analysis.range, self.clock.now(),
                                                   ex.reentry_cooldown_minutes, ex.max_reentries_per_range,
                                                   list(self._reserved.values()))
        if ok:
            return analysis
        rule = FilterResult(name="reentry", passed=False, reason=f"{why[:1].upper()}{why[1:]}.")
        return analysis.model_copy(update={"filters": [*analysis.filters, rule], "passed": False})

    def auto_execute_candidate(self, analysis: AnalysisResult, proposals: list[TradeProposal]) -> TradeProposal | None:
        """The proposal to execute without a human, if auto-execution is on and confidence clears the bar."""
        ex = self.cfg.for_symbol(analysis.symbol).execution
        enabled = ex.auto_execute_enabled or ex.approval_mode == "auto"
        if not enabled or not proposals or analysis.confidence <= ex.auto_execute_confidence_threshold:
            return None
        return proposals[0]

    outcome_of = staticmethod(outcome_of)

    def _missing(self, proposal_id: str) -> ProposalOutcome:
        return ProposalOutcome(proposal_id=str(proposal_id)[:16], ok=False,
                               message="I can't find that proposal; run /scalp again for a fresh one.")

    def reject(self, proposal_id: str, user_id) -> ProposalOutcome:
        if self.authz is not None:
            self.authz.check(user_id, "reject")
        # the move first: it reads the row itself, and only a lost move needs the row (missing, or decided)
        moved = self.store.proposals.move(
            proposal_id, ProposalState.PENDING, ProposalState.REJECTED, decided_by=str(user_id),
            decided_at=self.clock.now(), message="rejected",
        )
        if moved is not None:
            return self.outcome_of(moved, ok=True)
        p = self.store.proposals.get(proposal_id)
        if p is None:
            return self._missing(proposal_id)
        return self.outcome_of(p, duplicate=True, ok=False)

    async def approve(self, proposal_id: str, user_id, *, auto: bool = False) -> ProposalOutcome:
        """Approve and execute. Safe to call any number of times: at most one order per proposal."""
        if not auto and self.authz is not None:
            self.authz.check(user_id, "approve")
        p = self.store.proposals.get(proposal_id)
        if p is None:
            return self._missing(proposal_id)
        if p.state is not ProposalState.PENDING:
            return self.outcome_of(p, duplicate=True)
        now = self.clock.now()
        if now >= p.expires_at:
            self.store.proposals.transition(p.id, ProposalState.PENDING, ProposalState.EXPIRED, decided_at=now,
                                            message="expired")
            return self.outcome_of(self.store.proposals.get(p.id))
        blocked = self.notify.entries_blocked()
        if blocked:
            return ProposalOutcome(proposal_id=p.id, state=p.state, ok=False, message=blocked, symbol=p.symbol,
                                   strategy=p.strategy.strategy)
        who = AUTO_USER if auto else str(user_id)
        approved = self.store.proposals.move(p.id, ProposalState.PENDING, ProposalState.APPROVED, decided_by=who,
                                             decided_at=now)
        if approved is None:
            return self.outcome_of(self.store.proposals.get(p.id), duplicate=True)
        self.in_flight.add(p.id)
        try:
            return await self._execute(approved)
        except Exception as e:  # noqa: BLE001 - an unexpected bug must still leave a clear state
            log.exception("execution of %s crashed", p.id)
            self.notify.error("execution_failed_after_approval", f"execution of {p.id} crashed: {e}",
                              symbol=p.symbol, proposal_id=p.id)
            return await self._settle_after_crash(p.id)
        finally:
            self.in_flight.discard(p.id)
            self._reserved.pop(p.id, None)  # registered by now (or nothing was traded)

    async def _settle_after_crash(self, proposal_id: str) -> ProposalOutcome:
        """Leave no proposal hanging in approved/executing: adopt its order if the broker has it, else fail it."""
        p = self.store.proposals.get(proposal_id)
        msg = "Something went wrong while placing this order; nothing was traded. Run /scalp again."
        if p.state is ProposalState.EXECUTING:
            try:
                found = await self.resolve_at_broker(p)
            except BrokerError:  # leave it executing: start-up recovery resolves it against the broker
                return self.outcome_of(p)
            if found is not None:
                return found
            self.note_unconfirmed(p.id)
            return self._fail(p, ProposalState.EXECUTING, msg)
        if p.state is ProposalState.APPROVED:
            return self._fail(p, ProposalState.APPROVED, msg)
        return self.outcome_of(p)

    # ---- execution --------------------------------------------------------------------------------
    def _reentry_allowed(self, p: TradeProposal) -> tuple[bool, str]:
        ex = self.cfg.for_symbol(p.symbol).exits
        pending = [v for k, v in self._reserved.items() if k != p.id]
        if full := self._range_full(p.symbol, p.analysis.range, pending):
            return False, full
        return self.exits.check_reentry_allowed(p.symbol, p.analysis.range, self.clock.now(),
                                                ex.reentry_cooldown_minutes, ex.max_reentries_per_range, pending)

    def _range_full(self, symbol: str, rng: RangeStructure | None, pending) -> str | None:
        """Why no further position may open on this range now (`max_positions_per_range`), or None."""
        cap = self.cfg.for_symbol(symbol).execution.max_positions_per_range
        open_now = self.exits.open_on_range(symbol, rng, pending)
        if len(open_now) < cap:  # e.g. a second strategy off the same card: one range, one position
            return None
        return (f"{', '.join(open_now[:3])} is already open on this {symbol} range and the limit is {cap} open "
                f"position{'' if cap == 1 else 's'} per range (max_positions_per_range); nothing was traded")

    async def symbol_info(self, symbol: str, fresh: bool = False) -> SymbolInfo:
        """The symbol's rules, re-read after SYMBOL_INFO_TTL (or now with `fresh`, right before an order)."""
        now = self.clock.now()
        hit = self._symbol_info.get(symbol)
        if hit is None or fresh or now - hit[0] > SYMBOL_INFO_TTL or now < hit[0]:
            hit = self._symbol_info[symbol] = (now, await self.offload(self.broker.symbol_info, symbol))
        return hit[1]

    async def account_refusal(self, symbol: str, side: str, info: SymbolInfo | None = None) -> str | None:
        return await account_refusal(self.broker, self.cfg, symbol, side, info or await self.symbol_info(symbol))

    async def with_account_rules(self, analysis: AnalysisResult) -> AnalysisResult:
        """The card says up front when the account model or the trade mode forbids the entry (account_rules)."""
        return await with_account_rules(self, analysis)

    def note_unconfirmed(self, proposal_id: str) -> None:
        """A failed proposal whose order may still land: watched by the running deal-history scan."""
        self.unconfirmed[proposal_id] = self.clock.now()

    def _fail(self, p: TradeProposal, from_state: ProposalState, message: str) -> ProposalOutcome:
        cur = self.store.proposals.move(p.id, from_state, ProposalState.FAILED, message=message,
                                        decided_at=self.clock.now())
        return self.outcome_of(cur or self.store.proposals.get(p.id))

    async def _execute(self, p: TradeProposal) -> ProposalOutcome:
        tcfg = self.cfg.for_symbol(p.symbol)
        ex = tcfg.execution
        s = p.strategy
        try:
            info = await self.symbol_info(p.symbol, fresh=True)  # the rules as they are now, not at start-up
            lot = normalise_lot(p.lot or ex.lot_size, info)  # 1. lot size
            ok, why = self._reentry_allowed(p)
            if not ok:
                return self._fail(p, ProposalState.APPROVED, f"Not entering: {why}.")
            refusal = await self.account_refusal(p.symbol, "buy" if s.direction is Direction.LONG else "sell", info)
            if refusal:
                return self._fail(p, ProposalState.APPROVED, f"Not entering: {refusal}.")
            tick = await self.offload(self.broker.tick, p.symbol)
        except BrokerError as e:
            self.notify.error("order_execution_fails", f"could not price {p.symbol}: {e.message}", symbol=p.symbol)
            return self._fail(p, ProposalState.APPROVED,
                              f"I could not get a price for {p.symbol} from the broker ({e.message}); nothing was traded.")
        if bad := tick_problem(tick, self.clock.now()):
            return self._refuse_price(p, ProposalState.APPROVED, f"I did not trade: {bad}.")
        check = validate_entry_price(s.direction, s.entry, tick.bid, tick.ask, ex.max_entry_slippage_pct,
                                     info.digits)  # 2. price still valid?
        if not check.ok:
            return self._refuse_price(p, ProposalState.APPROVED, check.message)
        price = check.current_price
        atr = p.analysis.range.atr if p.analysis.range is not None else None
        if usable_price(s.stop_loss) and 0 <= (s.stop_loss - price) * s.direction.sign < price / 2:
            return self._fail(p, ProposalState.APPROVED,
                              f"Price {price} is already through the planned stop {s.stop_loss}; nothing was traded.")
        bad = order_price_problem(s.direction, price, s.entry, s.stop_loss, s.take_profit, atr)
        if bad:  # fail closed: NaN/inf/0/negative/subnormal/huge never reach an order
            return self._refuse_price(p, ProposalState.APPROVED, f"I did not trade: {bad}.")
        sl, tp, notes = adjust_stops(s.direction, price, s.stop_loss, s.take_profit, info,
                                     spread=tick.ask - tick.bid)  # 3. SL/TP vs stops level
        bad = order_price_problem(s.direction, price, s.entry, sl, tp, atr)  # the stops as they will be sent
        if bad:
            return self._refuse_price(p, ProposalState.APPROVED, f"I did not trade: {bad} after the broker's rules.")
        comment = order_comment(p.id, s.strategy)
        late = time_rules_block(self.cfg, p.symbol, self.clock, self.news_calendar)  # a replay's approval can be hours of market later
        if late:
            return self._fail(p, ProposalState.APPROVED, f"Not entering: {late.rstrip('.')}. Nothing was traded.")
        blocked = self.notify.entries_blocked()  # again: a pause/emergency may have landed during the awaits above
        if blocked:
            return self._fail(p, ProposalState.APPROVED, f"{blocked} Nothing was traded.")
        ok, why = self._reentry_allowed(p)  # again, counting orders still on their way (no await until reserved)
        if not ok:
            return self._fail(p, ProposalState.APPROVED, f"Not entering: {why}.")
        self._reserved[p.id] = (p.symbol, p.analysis.range)
        if not self.store.proposals.transition(p.id, ProposalState.APPROVED, ProposalState.EXECUTING):
            return self.outcome_of(self.store.proposals.get(p.id), duplicate=True)
        request = OrderRequest(
            symbol=p.symbol, side="buy" if s.direction is Direction.LONG else "sell", volume=lot, sl=sl, tp=tp,
            price=price, deviation=ex.deviation_points, magic=ex.magic_number, comment=comment,
        )
        return await self._send_and_record(p, request, notes)

    def _refuse_price(self, p: TradeProposal, from_state: ProposalState, message: str) -> ProposalOutcome:
        """A price that fails its check: an ERROR line in the log, an error event, and the proposal failed."""
        log.error("refused %s %s (proposal %s): %s", p.symbol, p.strategy.strategy, p.id, message)
        self.notify.error("price_validation_fails", message, alert=False, symbol=p.symbol, proposal_id=p.id)
        return self._fail(p, from_state, message)

