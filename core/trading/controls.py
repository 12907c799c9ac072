"""The trader's controls on open trades: /close, pause and resume, and the emergency stop.

Split from `core.service` (the facade the front ends call), which keeps start-up, analysis, proposals and
reports. A close waits for the monitor's own exit of the same trade rather than racing it; an emergency
pauses entries first, lets orders already sent land, adopts positions with our magic not registered yet,
then closes every range scalp. `TradeControls` is a mixin of `TradingService` and uses its state (cfg,
store, broker, clock, authz, killswitch, notifier, exits, execution, executor, `_require_ready`).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pydantic import BaseModel, Field

from core.brokers.base import BrokerError
from core.brokers.tags import proposal_id_from_comment
from core.domain.models import ActiveTrade, ClosedTrade, ProposalState
from core.domain.wording import actor_label
from core.exits.adoption import adopt_position, in_flight, our_magics
from core.trading.proposal_outcome import ProposalOutcome

log = logging.getLogger(__name__)

EMERGENCY_IN_FLIGHT_WAIT = 30.0  # seconds an emergency waits for orders already sent to be recorded
EXIT_IN_FLIGHT_WAIT = 60.0  # seconds /close waits for the monitor's exit of the same trade (policy retries)


class EmergencyOutcome(BaseModel):
    ok: bool
    message: str
    outcomes: list[ProposalOutcome] = Field(default_factory=list)


class TradeControls:
    """The close, pause/resume and emergency handlers of `TradingService` (see the module docstring)."""

    async def close_trade(self, ticket: int, user_id) -> ProposalOutcome:
        self.authz.check(user_id, "close")
        self._require_ready()
        ticket = int(ticket)
        trade = self.exits.get(ticket)
        if trade is None:
            return ProposalOutcome(proposal_id="", ok=False, message=f"No open range scalp with ticket {ticket}.")
        for _ in range(2):  # again if the monitor began its own exit of it while we fetched a price
            if self.executor.closing(trade.ticket):  # the monitor's exit is in flight: its result is ours
                await self._wait_until(lambda: not self.executor.closing(ticket), EXIT_IN_FLIGHT_WAIT)
                closed = self.store.closed.get(trade.ticket)
                if closed is not None:
                    return self._closed_outcome(trade, closed)
                trade = self.exits.get(trade.ticket) or trade
            try:
                tick = await asyncio.to_thread(self.broker.tick, trade.symbol)
                hint = tick.bid if trade.direction.sign > 0 else tick.ask
            except BrokerError:
                hint = trade.entry_price
            out = await self.executor.close(trade, "manual_close", f"closed by {actor_label(user_id)}", price_hint=hint)
            if not out.in_flight:
                break
        closed = self.store.closed.get(trade.ticket)
        if closed is not None:
            return self._closed_outcome(trade, closed)
        done = out.ok or out.already_closed  # closed at the broker; its deals are not readable yet (MT5 lag)
        msg = (f"Closed ticket {trade.ticket}{f' at {out.price:g}' if out.ok else ''}; I journal it as soon as the "
               "broker's history shows the deal." if done else out.message)
        return ProposalOutcome(proposal_id=trade.proposal_id or "", ok=done, ticket=trade.ticket,
                               fill_price=out.price if out.ok else None, symbol=trade.symbol,
                               strategy=trade.strategy, message=msg)

    @staticmethod
    def _closed_outcome(trade: ActiveTrade, closed: ClosedTrade) -> ProposalOutcome:
        return ProposalOutcome(
            proposal_id=trade.proposal_id or "", ok=True, ticket=trade.ticket, fill_price=closed.exit_price,
            symbol=trade.symbol, strategy=trade.strategy,
            message=f"Closed ticket {trade.ticket} at {closed.exit_price:g} ({closed.r_multiple:+.2f} R).",
        )

    @staticmethod
    async def _wait_until(done: Callable[[], bool], timeout: float) -> None:
        """Wait (bounded, wall time) for work already running elsewhere on this loop or a thread."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done() and loop.time() < deadline:
            await asyncio.sleep(0.02)

    # ---- kill switch --------------------------------------------------------------------------------
    def _ks(self):
        if self.killswitch is None:
            from core.trading.killswitch import KillSwitch

            self.killswitch = self.notifier.killswitch = KillSwitch(self.store, self.cfg, self.clock)
        return self.killswitch

    def pause(self, user_id, reason: str = ""):
        self.authz.check(user_id, "pause")
        return self._ks().pause(user_id, reason)

    def resume(self, user_id):
        self.authz.check(user_id, "resume")
        return self._ks().resume(user_id)

    async def emergency(self, user_id) -> EmergencyOutcome:
        """Pause entries, then close every range-scalp position (exits keep their policy and alerts)."""
        self.authz.check(user_id, "emergency")
        self._require_ready()
        self._ks().emergency(user_id, "/emergency in chat")
        # an order already on its way is not registered yet: let it land so it is closed below too
        await self._wait_for_in_flight_orders()
        await self._adopt_unknown_positions()
        outs = []
        for t in self.exits.active_trades():
            out = await self.close_trade(t.ticket, user_id)
            if not out.ok and (closed := self.store.closed.get(t.ticket)) is not None:
                out = self._closed_outcome(t, closed)  # its SL/TP or a human closed it while we closed others
            outs.append(out)
        failed = [o.ticket for o in outs if not o.ok]
        msg = f"🚨 Emergency stop: new entries paused; closed {len(outs) - len(failed)} of {len(outs)} range scalp(s)."
        if failed:
            msg += (f" Could NOT close ticket(s) {', '.join(map(str, failed))}: close them manually in MetaTrader;"
                    " I keep trying each monitor cycle while the emergency stop is on.")
        if n := len(self.execution.in_flight):  # outlasted the wait: the monitor closes it once it is recorded
            msg += (f" {n} order(s) still on its way to the broker: I close the position as soon as it lands"
                    " (the emergency stop stays on).")
        return EmergencyOutcome(ok=not failed, message=msg, outcomes=outs)

    async def _adopt_unknown_positions(self) -> None:
        """Register positions with our magic the monitor has not adopted yet (an order whose confirmation
        was lost lands later), so an emergency closes every range scalp, not only the known ones."""
        try:
            positions = {}
            for m in our_magics(self.cfg, self.exits.active_trades()):
                for pos in await asyncio.to_thread(self.broker.positions, None, m):
                    positions[pos.ticket] = pos
        except BrokerError as e:
            log.warning("emergency: could not list the broker's positions: %s", e)
            return
        known = self.exits.range_scalp_tickets()
        for pos in positions.values():
            if pos.ticket in known:
                continue
            try:
                pid = proposal_id_from_comment(pos.comment)
                p = self.store.proposals.get(pid) if pid else None
                if p is not None and p.state is ProposalState.EXECUTING:
                    await self.execution.resolve_at_broker(p)  # records it against its proposal
                elif not in_flight(self.store, pos):
                    adopt_position(self.store, self.exits, self.notifier, pos, self.clock)
            except Exception:  # noqa: BLE001 - the known positions must still be closed
                log.exception("emergency: adopting position %s failed", pos.ticket)

    async def _wait_for_in_flight_orders(self, timeout: float = EMERGENCY_IN_FLIGHT_WAIT) -> None:
        """Wait (bounded, wall time) until no approval is between 'executing' and its record."""
        await self._wait_until(lambda: not self.execution.in_flight, timeout)
