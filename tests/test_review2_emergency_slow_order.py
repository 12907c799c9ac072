"""Second review: /emergency while an order outlasts its bounded wait (real-data paper broker).

/emergency waits (at most 30 s) for orders already sent. An order still on its way after that wait was
recorded after the emergency had answered "closed 0 of 0 range scalp(s)", and then monitored as an
ordinary trade under the emergency stop. The answer now says an order is still on its way, and the
monitor closes the position as soon as it is recorded.
"""
from __future__ import annotations

import lifecycle_helpers as k
import pytest
from test_review_execution import SYMBOL, _svc


@pytest.fixture(scope="module")
def cfg():
    return k.config()


@pytest.fixture(scope="module")
def bars(cfg):
    return k.m5(cfg, SYMBOL)


async def test_an_order_landing_after_the_emergency_answer_is_announced_and_closed(cfg, bars, tmp_path):
    svc, inner = await _svc(cfg, bars, tmp_path)
    _, props = await svc.propose(SYMBOL)
    approval, release = await k.approve_held_at_broker(svc, props[0].id)
    wait = svc._wait_for_in_flight_orders
    svc._wait_for_in_flight_orders = lambda: wait(timeout=0.1)  # the broker takes longer than the wait
    em = await svc.emergency(k.TRADER)
    assert "on its way" in em.message, em.message
    release.set()
    out = await approval
    assert out.ok  # sent before the emergency: recorded, not lost
    await svc.monitor.run_cycle()  # the cycle the approval wakes
    assert inner.positions() == [], "the order that landed after the emergency is still open"
    assert svc.store.closed.get(out.ticket).exit_reason == "emergency"
    svc.store.close()
    inner.close()
