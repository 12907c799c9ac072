"""Second review: the breakeven move racing the position's end (real-data paper broker).

The monitor sends the breakeven modify from a worker thread. If the broker's stop fills, a human closes
the ticket in MetaTrader, or /close gets there first, the modify finds no position. That is no fault: the
next cycle journals the close from the deals. It was recorded as a `breakeven_failed` error ("could not
move the stop"), counted toward the hourly auto-disable and shown by /health.
"""
from __future__ import annotations

import lifecycle_helpers as k
import pytest
from test_review_execution import HookBroker

from core.domain.clock import FixedClock

SYMBOL = "XAUUSDc"


@pytest.fixture(scope="module")
def cfg():
    return k.config()


async def test_a_position_gone_before_the_breakeven_modify_is_journalled_not_a_fault(cfg, tmp_path):
    bars = k.m5(cfg, SYMBOL)
    setup = k.find_breakeven_then_exit(bars, 30000, risk=3.0)
    clock = FixedClock(float(bars["time"][setup.index]))
    svc, _, inner = await k.paper_service(cfg, tmp_path, clock, wrap=HookBroker,
                                          analyser=lambda s: k.analysis_at(s, bars, clock.now(), setup))
    _, props = await svc.propose(SYMBOL)
    out = await svc.approve(props[0].id, k.TRADER)
    assert out.ok, out.message
    ticket = out.ticket
    gone = []
    # the position closes at the broker while the modify is on its way (a human in MetaTrader here)
    svc.broker.hooks["modify_sltp"] = lambda: gone.append(inner.close_position(ticket, None, 50, "manual"))
    reports = []
    for _ in range(40):
        inner.step()
        reports.append(await svc.monitor.run_cycle())
        if gone:
            break
    assert gone, "the breakeven move was never sent"
    assert reports[-1].sl_moves == 0
    assert not any("breakeven" in e for e in reports[-1].errors), reports[-1].errors
    assert svc.store.errors.recent(10, "breakeven_failed") == []
    rep = await svc.monitor.run_cycle()  # the next cycle journals it from the deals
    assert rep.broker_closes == 1
    assert svc.store.closed.get(ticket).exit_reason == "closed_outside_bot"
    svc.store.close()
    inner.close()
