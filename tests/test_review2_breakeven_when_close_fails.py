"""Second review: a breakeven due in the same cycle as an exit that the broker refuses (real XAUUSDc bars).

When a close and a breakeven move are due together the close wins and the move is skipped, which is
right while the close goes through. When the broker refuses the close (three attempts), the trade stays
open on its initial stop: the page said "the broker-side stop at <initial SL> stays in place" for a trade
sitting above +1 R, and each later cycle repeated the failing close and skipped the move again, so a
trade in profit could still lose the full R. A refused close now lets the due stop move go out.
"""
from __future__ import annotations

import lifecycle_helpers as k
import pytest

from core.brokers.base import BrokerError
from core.domain.clock import FixedClock

SYMBOL = "XAUUSDc"


@pytest.fixture(scope="module")
def cfg():
    return k.config({"exits": {"max_minutes_in_trade": 1}})  # the time limit is due every cycle


async def test_a_refused_close_still_moves_the_due_breakeven(cfg, tmp_path):
    bars = k.m5(cfg, SYMBOL)
    setup = k.find_breakeven_then_exit(bars, 30000, risk=3.0)
    clock = FixedClock(float(bars["time"][setup.index]))
    svc, _, inner = await k.paper_service(cfg, tmp_path, clock,
                                          analyser=lambda s: k.analysis_at(s, bars, clock.now(), setup))
    broker = svc.broker
    _, props = await svc.propose(SYMBOL)
    out = await svc.approve(props[0].id, k.TRADER)
    assert out.ok, out.message
    trade = svc.exits.get(out.ticket)
    refused = BrokerError("trade disabled by the dealer", 10017)
    for _ in range(40):
        inner.step()
        if inner.tick(SYMBOL).bid >= trade.entry_price + 1.2 * trade.initial_risk:
            break
    else:
        raise AssertionError("the setup never reached +1.2 R")
    broker.fail("close_position", refused, refused, refused)
    rep = await svc.monitor.run_cycle()
    kinds = [(s.kind, s.action) for s in rep.signals]
    assert ("max_time_in_trade", "close") in kinds and ("breakeven", "move_sl") in kinds, kinds
    assert rep.exits == 0 and broker.calls.get("close_position") == 3  # one close, refused three times
    (pos,) = inner.positions()
    assert pos.sl == pytest.approx(trade.entry_price), "the stop stayed at the initial SL after the close failed"
    assert svc.exits.get(out.ticket).breakeven_moved and rep.sl_moves == 1
    svc.store.close()
    inner.close()
