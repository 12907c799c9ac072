"""A paper market order's entry deal row is the one a `Deal` built from the order would give.

`PaperOrders._market_order` writes the row's values directly (from the validated position it books); this
compares the stored row, value for value and SQLite type for type, with `_deal_values(Deal(...))` as the
order path built it before, for both sides, a commission and none, and a comment with odd characters."""
from __future__ import annotations

import pytest
from broker_helpers import deal_row, opened_xau

from core.brokers.base import Deal
from core.brokers.paper.store import _deal_values


@pytest.mark.parametrize("side,commission,comment", [("buy", 3.5, "rs:abc:bb_fade"), ("sell", 0.0, 'x",\'é'),
                                                     ("buy", 0.0, "")])
def test_the_entry_deal_row_is_the_deals(tmp_path, side, commission, comment):
    broker, clock, req, res = opened_xau(tmp_path, side, commission, comment)
    want = Deal(ticket=res.deal, order=res.order, position_id=res.order, symbol=req.symbol, type=req.side,
                entry="in", volume=req.volume, price=res.price,
                commission=-round(broker.commission_per_lot * req.volume, 2), magic=req.magic, comment=req.comment,
                time=clock.now(), reason="client")
    row, types = deal_row(broker, res.deal)
    assert tuple(row) == _deal_values(want)
    assert [type(v) for v in row] == [type(v) for v in _deal_values(want)]
    assert tuple(types) == tuple({int: "integer", float: "real", str: "text"}[type(v)] for v in _deal_values(want))
    assert broker.history_deals(res.order) == [want]
    broker.close()
