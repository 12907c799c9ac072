"""Second review: a position /emergency could not close (real-data paper broker).

/emergency answered "Could NOT close ticket(s) N: close them manually in MetaTrader" and then left the
position to the monitor as an ordinary trade, though the emergency stop was on. The monitor now keeps
closing it while the emergency stop is on, and the answer says so.
"""
from __future__ import annotations

import lifecycle_helpers as k
import pytest

from core.brokers.base import RequoteError

SYMBOL = "XAUUSDc"
NEAR = 1_746_003_600.0  # 2025-04-30 09:00 UTC


@pytest.fixture(scope="module")
def cfg():
    return k.config()


async def test_a_position_the_emergency_could_not_close_is_closed_by_the_next_cycle(cfg, tmp_path):
    svc, _, inner = await k.paper_service(cfg, tmp_path, k.common_time(cfg, (SYMBOL,), near=NEAR))
    broker = svc.broker
    (ticket,) = await k.open_trades(svc, SYMBOL)
    broker.fail("close_position", *[RequoteError("requote", 10004)] * 3)
    res = await svc.emergency(k.TRADER)
    assert not res.ok and f"Could NOT close ticket(s) {ticket}" in res.message
    assert "keep trying" in res.message, res.message
    inner.step()
    await svc.monitor.run_cycle()
    assert inner.positions() == []
    assert svc.store.closed.get(ticket).exit_reason == "emergency"
    svc.store.close()
    inner.close()
