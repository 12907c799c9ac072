"""Second review: an order that lands after /emergency (real-data paper broker).

/emergency waits for orders in flight and closes every range scalp it knows. An order the broker did
not confirm (timeout: its proposal is failed, never resent) can still land afterwards, or one can
outlast the emergency's bounded wait. The monitor then adopted it ("ORPHAN ADOPTED ... now monitored")
and kept it open while the emergency stop was on, after the trader had been told everything was
closed. While the emergency stop is on, the monitor closes any range scalp it finds open.
"""
from __future__ import annotations

import lifecycle_helpers as k
import pytest

from core.brokers.base import BrokerTimeoutError, OrderRequest
from core.brokers.tags import order_comment
from core.domain.models import ProposalState

SYMBOL = "XAUUSDc"
NEAR = 1_746_003_600.0  # 2025-04-30 09:00 UTC


@pytest.fixture(scope="module")
def cfg():
    return k.config({"exits": {"reentry_cooldown_minutes": 0, "max_reentries_per_range": 100}})


async def test_an_unconfirmed_order_landing_after_the_emergency_is_closed(cfg, tmp_path):
    svc, _, inner = await k.paper_service(cfg, tmp_path, k.common_time(cfg, (SYMBOL,), near=NEAR))
    broker = svc.broker
    (known,) = await k.open_trades(svc, SYMBOL)
    _, props = await svc.propose(SYMBOL)
    p = props[0]
    broker.fail("market_order", BrokerTimeoutError("IPC timeout", -10005))
    out = await svc.approve(p.id, k.TRADER)
    assert not out.ok and svc.store.proposals.get(p.id).state is ProposalState.FAILED
    em = await svc.emergency(k.TRADER)
    assert em.ok and svc.store.closed.get(known) is not None
    # ... and then the unconfirmed order lands at the broker after all
    s = p.strategy
    tick = inner.tick(SYMBOL)
    late = inner.market_order(OrderRequest(symbol=SYMBOL, side="buy", volume=p.lot, sl=s.stop_loss,
                                           tp=s.take_profit, price=tick.ask, deviation=100,
                                           magic=cfg.execution.magic_number, comment=order_comment(p.id, s.strategy)))
    ticket = int(late.position or late.order)
    inner.step()
    await svc.monitor.run_cycle()
    assert inner.positions() == [], "a position that landed during the emergency stop is left open"
    closed = svc.store.closed.get(ticket)
    assert closed is not None and closed.exit_reason == "emergency"
    assert any(a.kind == "orphan_adopted" for a in svc.notifier.sent)  # the trader still hears it landed
    # after /resume the monitor manages trades as usual again
    svc.resume(k.TRADER)
    (fresh,) = await k.open_trades(svc, SYMBOL)
    await svc.monitor.run_cycle()
    assert svc.exits.get(fresh) is not None and len(inner.positions()) == 1
    svc.store.close()
    inner.close()
