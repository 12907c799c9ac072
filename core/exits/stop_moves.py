"""The monitor's stop moves (breakeven): the broker first, then one store transaction for all of them.

Split from `core.exits.monitor` so the cycle stays readable; `rep` is the monitor's `CycleReport` (core.exits.cycle_report).
"""
from __future__ import annotations

import asyncio
import logging
import time

from core.brokers.base import BrokerError, FrozenError, PositionNotFoundError
from core.domain.models import ActiveTrade, ExitSignal
from core.exits.executor import NO_MARKET
from core.exits.manager import TradeNotRegistered

log = logging.getLogger(__name__)


async def move_stops(broker, exits, notify, moves: list[tuple[ActiveTrade, ExitSignal]], rep,
                     offload=None) -> None:
    """Broker first (the broker-side SL is what protects the money), then one transaction for all.

    If the save fails after the broker moved, the next cycle adopts the broker's SL and the rule does
    not fire again (the stop is already at breakeven), so nothing is moved twice."""
    moved: list[tuple[ActiveTrade, ExitSignal]] = []
    offload = offload or asyncio.to_thread  # the monitor's (core.exits.monitor.Monitor)
    for trade, sig in moves:
        tb = time.perf_counter()
        try:
            await offload(broker.modify_sltp, trade.ticket, sig.new_sl, trade.tp)
            moved.append((trade, sig))
        except PositionNotFoundError:  # its stop, a human or /close got there first: no fault;
            log.info("breakeven for %s: the position is already closed", trade.ticket)  # journalled next cycle
        except FrozenError as e:  # inside the freeze distance (10029): "not now", the rule fires again next cycle
            log.info("breakeven for %s skipped this cycle: %s", trade.ticket, e.message)
        except BrokerError as e:
            rep.errors.append(f"breakeven {trade.ticket}: {e.message}")
            if not isinstance(e, NO_MARKET):  # retried each cycle; a closed market is no fault
                notify.error("breakeven_failed", f"could not move the stop of {trade.ticket}: {e.message}",
                                  alert=False, symbol=trade.symbol, ticket=trade.ticket)
        finally:
            rep.broker_ms += (time.perf_counter() - tb) * 1000
    if not moved:
        return
    updates = {t.ticket: {"sl": sig.new_sl, "breakeven_moved": True} for t, sig in moved}
    notes = {t.ticket: ("sl_moved", {"from": t.sl, "to": sig.new_sl, "reason": "breakeven", "text": sig.reason})
             for t, sig in moved}
    try:
        saved = exits.update_many(updates, notes)
    except TradeNotRegistered:  # one closed meanwhile: save the others one by one
        saved = {}
        for ticket, upd in updates.items():
            try:
                saved[ticket] = exits.update_trade_state(ticket, upd, journal=notes[ticket])
            except TradeNotRegistered:
                pass
    for trade, sig in moved:
        if trade.ticket not in saved:
            continue
        rep.sl_moves += 1
        notify.alert("breakeven_moved", "info", f"{trade.symbol}: stop moved to breakeven",
                          f"Ticket {trade.ticket}: {sig.reason}.", symbol=trade.symbol, ticket=trade.ticket,
                          trade=saved[trade.ticket], range_data=trade.range_data)
