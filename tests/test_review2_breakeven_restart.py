"""Second review: a breakeven move the broker took but the store never saved (crash, or a failed save).

Recovery (and the running monitor) adopt the broker's stop, but left `breakeven_moved` False and wrote
no `sl_moved` entry: /status showed no BE for a trade whose stop sat at its entry, the closed trade's
journal said the stop was never moved, and the journal had no trace of the move at all.
"""
from __future__ import annotations

import lifecycle_helpers as k
import pytest

from core.domain.clock import FixedClock

SYMBOL = "XAUUSDc"


@pytest.fixture(scope="module")
def cfg():
    return k.config()


async def _in_profit(cfg, tmp_path, clock_holder):
    bars = k.m5(cfg, SYMBOL)
    setup = k.find_breakeven_then_exit(bars, 30000, risk=3.0)
    clock = FixedClock(float(bars["time"][setup.index]))
    clock_holder.append(clock)
    svc, _, inner = await k.paper_service(cfg, tmp_path, clock, wrap=None,
                                          analyser=lambda s: k.analysis_at(s, bars, clock.now(), setup))
    _, props = await svc.propose(SYMBOL)
    out = await svc.approve(props[0].id, k.TRADER)
    assert out.ok, out.message
    trade = svc.exits.get(out.ticket)
    for _ in range(40):  # until the trade is far enough in profit for a stop at its entry
        inner.step()
        if inner.tick(SYMBOL).bid >= trade.entry_price + 1.2 * trade.initial_risk:
            break
    else:
        raise AssertionError("the setup never reached +1.2 R")
    return svc, inner, trade


def _check(svc, ticket, entry):
    t = svc.exits.get(ticket)
    assert t.sl == pytest.approx(entry)
    assert t.breakeven_moved, "the stop sits at the entry but the trade says breakeven was not moved"
    assert svc.status()[0].breakeven_moved
    moves = [e for e in svc.store.journal.for_ticket(ticket) if e.event == "sl_moved"]
    assert len(moves) == 1 and moves[0].data["to"] == pytest.approx(entry), moves


async def test_restart_after_an_unsaved_breakeven_keeps_it_as_a_breakeven(cfg, tmp_path):
    holder = []
    svc, inner, trade = await _in_profit(cfg, tmp_path, holder)
    inner.modify_sltp(trade.ticket, trade.entry_price, trade.tp)  # sent; the bot died before saving it
    svc.store.close()
    again = k.service(cfg, tmp_path, holder[0], broker=inner)
    rep = await again.start(monitor=False)
    assert rep.stops_synced == [trade.ticket]
    _check(again, trade.ticket, trade.entry_price)
    await again.monitor.run_cycle()  # the rule does not move it again, nor journal it twice
    _check(again, trade.ticket, trade.entry_price)
    again.store.close()
    inner.close()


async def test_running_monitor_adopting_a_broker_breakeven_marks_it(cfg, tmp_path):
    holder = []
    svc, inner, trade = await _in_profit(cfg, tmp_path, holder)
    inner.modify_sltp(trade.ticket, trade.entry_price, trade.tp)  # the save after the modify failed
    await svc.monitor.run_cycle()
    _check(svc, trade.ticket, trade.entry_price)
    svc.store.close()
    inner.close()
