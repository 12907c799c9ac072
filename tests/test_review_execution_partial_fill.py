"""Review of a partially filled entry (MT5 retcode 10010 DONE_PARTIAL, possible with IOC filling).

The engine recorded the trade with the volume it asked for, not the volume the broker filled. A
ClosedTrade is only built once the closing deals add up to the trade's volume, so after the position
closed the trade was never journalled: it stayed "open" in the store and /status for ever, the
monitor re-read its history every cycle, and /metrics never counted it. Real-data paper broker; the
partial fill is the broker filling half of the request.
"""
from __future__ import annotations

import lifecycle_helpers as k
import pytest

from core.brokers.base import OrderResult

DONE_PARTIAL = 10010


@pytest.fixture(scope="module")
def cfg():
    return k.config({"execution": {"lot_size": 0.04}})


class HalfFills(k.FlakyBroker):
    def market_order(self, request):
        self.calls["market_order"] = self.calls.get("market_order", 0) + 1
        res = self.inner.market_order(request.model_copy(update={"volume": round(request.volume / 2, 2)}))
        return OrderResult(**{**res.model_dump(), "retcode": DONE_PARTIAL})


async def test_a_partially_filled_entry_is_journalled_when_it_closes(cfg, tmp_path):
    svc, _, inner = await k.paper_service(cfg, tmp_path, float(k.m5(cfg)["time"][30000]), wrap=HalfFills)
    (ticket,) = await k.open_trades(svc, "XAUUSDc")
    pos = inner.positions()[0]
    assert pos.volume == pytest.approx(0.02)
    assert svc.exits.get(ticket).volume == pytest.approx(pos.volume)  # what the broker holds

    out = await svc.close_trade(ticket, k.TRADER)
    assert out.ok, out.message
    assert svc.exits.get(ticket) is None and not svc.store.trades.get(ticket)
    ct = svc.store.closed.get(ticket)
    assert ct.volume == pytest.approx(0.02) and ct.exit_reason == "manual_close"
    deals = inner.history_deals(position_id=ticket)
    assert ct.pnl == pytest.approx(sum(d.profit + d.swap for d in deals))
    svc.store.close()
    inner.close()
