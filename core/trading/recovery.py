"""Start-up recovery, in the seed's order: load the store → reconcile with the broker → only then monitor.

Why this order: until the exit manager knows every range-scalp ticket, another exit manager (or our
own monitor) could treat a position as unknown, and a trader could approve a new trade while an old
one is still unaccounted for. So `TradingService.start()` awaits `recover()` before it starts the
monitor or accepts commands.

What it resolves:
- proposals left `executing` by a crash: the broker is asked for the proposal id (order comment)
  BEFORE anything could send again; found → recorded as executed, not found → failed (nothing traded);
- proposals left `approved` (nothing was sent yet) → failed, with a sentence saying so;
- stored trades the broker closed while we were down → journalled from the deal history;
- positions with our magic that the store does not know → orphans: alerted and adopted under monitoring;
- SL/TP drift (a breakeven sent but not saved before the crash) → the broker's values win;
- positions with our magic that opened AND closed without the store ever knowing them (an order the
  broker did not confirm, so its proposal was failed, that landed late and then hit SL/TP while we
  were down) → found in the deal history, journalled (adopted + closed from the deals) and alerted.
  Neither open (so not an orphan) nor stored (so not "closed while down"), they would otherwise leave
  the journal short of the broker's history. The scan starts at the previous scan's time (kv
  `DEAL_SCAN_KEY`, minus an overlap for late-synced history) or, the first time, at the oldest
  proposal that could have sent an order nobody recorded.
"""
from __future__ import annotations

import asyncio
import logging
import time

from core.brokers.base import BrokerError, Position
from core.domain.models import ProposalState, RecoveryReport
from core.exits.adoption import adopt_position, in_flight, journal_unknown_closed, our_magics
from core.ops.notify import REMINDER_SECONDS

log = logging.getLogger(__name__)

RECENT_CLOSED_FOR_REENTRY = 500


class Reconciler:
    """Start-up reconciliation, and its re-run by the monitor after a start without the broker.

    One object owns both, so the monitor is handed its reconcile step when it is built instead of the
    service wiring a hook into it after the fact."""

    def __init__(self, cfg, store, broker, exits, engine, executor, notifier, clock) -> None:
        self._args = (cfg, store, broker, exits, engine, executor, notifier, clock)
        self.notifier = notifier
        self.report: RecoveryReport | None = None

    async def run(self) -> RecoveryReport:
        self.report = await recover(*self._args)
        return self.report

    async def again(self) -> bool:
        """The monitor's re-run. It runs first in a cycle, so an error in it must not escape: that would
        cost the cycle's exits, every cycle. It is retried next cycle."""
        try:
            return (await self.run()).broker_ok
        except Exception as e:  # noqa: BLE001
            log.exception("re-running the start-up reconciliation failed; retrying next cycle")
            self.notifier.error("state_corruption", f"reconciliation failed: {type(e).__name__}: {e}", alert=False)
            return False


async def recover(cfg, store, broker, exits, engine, executor, notifier, clock) -> RecoveryReport:
    t0 = time.perf_counter()
    rep = RecoveryReport()
    # 1. load the store (no broker needed: the monitor can start from this even if the broker is down)
    trades = store.trades.all()
    exits.load(trades, store.closed.recent(RECENT_CLOSED_FOR_REENTRY))
    rep.loaded_trades = len(trades)
    rep.expired = store.proposals.expire_due(clock.now())
    # 2. reconcile with the broker
    try:
        await asyncio.to_thread(broker.connect)
        await _resolve_proposals(store, engine, notifier, rep)
        positions: dict[int, Position] = {}
        for m in our_magics(cfg, trades):
            for p in await asyncio.to_thread(broker.positions, None, m):
                positions[p.key] = p  # by identifier (the ticket can change)
    except BrokerError as e:
        rep.broker_ok = False
        rep.broker_error = e.message
        notifier.error("mt5_connection_lost", f"start-up reconciliation could not reach the broker: {e.message}",
                       alert=False)
        notifier.alert("connection_lost", "critical", "BROKER UNREACHABLE AT START-UP",
                       f"I could not reach the broker ({e.message}). The {len(trades)} stored trade(s) stay under "
                       "monitoring and will be reconciled when the connection returns.", dedup_key="connection_lost",
                       remind_after=REMINDER_SECONDS)  # re-run each cycle until it works
        rep.duration_ms = (time.perf_counter() - t0) * 1000
        return rep
    loaded = {t.ticket for t in trades}
    for t in exits.active_trades():
        if t.ticket not in loaded:  # registered after the positions were read (an approval during the
            continue  # monitor's re-run): its own execution recorded it; it is not missing at the broker
        pos = positions.get(t.ticket)
        if pos is None:
            try:
                closed = await executor.record_broker_close(t, reason_text="closed while the bot was down")
            except Exception:  # noqa: BLE001 - one unreadable history must not stop the start-up (nothing monitored)
                log.exception("journalling %s closed while down failed; the monitor retries", t.ticket)
                closed = None
            (rep.closed_while_down if closed is not None else rep.unresolved).append(t.ticket)
            continue
        if abs(pos.sl - t.sl) > 1e-12 or abs(pos.tp - t.tp) > 1e-12:
            exits.sync_stops(t.ticket, pos.sl, pos.tp)
            rep.stops_synced.append(t.ticket)
    if rep.unresolved:
        notifier.error("state_corruption", f"trades {rep.unresolved} are gone from the broker without closing deals",
                       alert=False)
        notifier.alert("state_mismatch", "critical", "TRADES MISSING AT THE BROKER",
                       f"Tickets {rep.unresolved} are in my store but neither open at the broker nor in its deal "
                       "history. I keep checking; please look at them in MetaTrader.", dedup_key="state_mismatch")
    known = exits.range_scalp_tickets()
    for ticket, pos in positions.items():
        if ticket not in known and not in_flight(store, pos):  # an execution still recording it owns it
            try:
                adopt_position(store, exits, notifier, pos, clock)
            except Exception:  # noqa: BLE001 - the monitor adopts it on its next cycle
                log.exception("adopting orphan %s failed at start-up", ticket)
                continue
            rep.orphans_adopted.append(ticket)
    try:
        rep.closed_unknown += await journal_unknown_closed(store, broker, exits, engine, executor, notifier, clock,
                                                           positions, our_magics(cfg, trades))
    except Exception as e:  # noqa: BLE001 - a catch-up: the next scan resumes from the same watermark,
        # while an escape would stop the start-up (or, re-run by the monitor, every cycle) before any exit
        msg = e.message if isinstance(e, BrokerError) else f"{type(e).__name__}: {e}"
        log.warning("scanning the deal history for unjournalled trades failed: %s", msg,
                    exc_info=not isinstance(e, BrokerError))
        notifier.error("state_corruption", f"start-up deal-history scan failed: {msg}", alert=False)
    rep.duration_ms = (time.perf_counter() - t0) * 1000
    log.info("recovery: %s", rep.model_dump(exclude_defaults=True))
    return rep


async def _resolve_proposals(store, engine, notifier, rep: RecoveryReport) -> None:
    busy = getattr(engine, "in_flight", set())  # a re-run while the bot is live must not touch these
    for p in store.proposals.list(states=[ProposalState.EXECUTING]):
        if p.id in busy:
            continue
        out = await engine.resolve_at_broker(p)
        if out is not None:
            rep.resolved_executing.append(p.id)
            continue
        msg = ("The bot restarted while this order was being sent and the broker has no order for it, so "
               "nothing was traded. Run /scalp again if you still want the trade.")
        if store.proposals.transition(p.id, ProposalState.EXECUTING, ProposalState.FAILED, message=msg):
            rep.failed_interrupted.append(p.id)
            if hasattr(engine, "note_unconfirmed"):  # a request still on its way may land after the restart
                engine.note_unconfirmed(p.id)
    for p in store.proposals.list(states=[ProposalState.APPROVED]):
        if p.id in busy:
            continue
        msg = "The bot restarted before this approved order was sent, so nothing was traded. Run /scalp again."
        if store.proposals.transition(p.id, ProposalState.APPROVED, ProposalState.FAILED, message=msg):
            rep.failed_interrupted.append(p.id)
