"""A paper market order's entry deal row is the one a `Deal` built from the order would give.

`PaperOrders._market_order` writes the row's values directly (from the validated position it books); this
compares the stored row, value for value and SQLite type for type, with `_deal_values(Deal(...))` as the
order path built it before, for both sides, a commission and none, and a comment with odd characters."""
from __future__ import annotations

import lifecycle_helpers as k
import pytest

from core.brokers.base import Deal, OrderRequest
from core.brokers.paper.store import _DEAL_COLS, _deal_values
from core.domain.clock import FixedClock


@pytest.mark.parametrize("side,commission,comment", [("buy", 3.5, "rs:abc:bb_fade"), ("sell", 0.0, 'x",\'é'),
                                                     ("buy", 0.0, "")])
def test_the_entry_deal_row_is_the_deals(tmp_path, side, commission, comment):
    cfg = k.config()
    bars = k.m5(cfg)
    clock = FixedClock(float(bars["time"][500]) + 600)
    broker = k.paper_broker(cfg, tmp_path / "p.sqlite", clock, commission_per_lot=commission)
    q = broker.tick("XAUUSDc")
    sign = 1 if side == "buy" else -1
    req = OrderRequest(symbol="XAUUSDc", side=side, volume=0.02, sl=round(q.bid - sign * 10, 2),
                       tp=round(q.bid + sign * 10, 2), price=q.ask if side == "buy" else q.bid, magic=77,
                       comment=comment)
    res = broker.market_order(req)
    want = Deal(ticket=res.deal, order=res.order, position_id=res.order, symbol=req.symbol, type=req.side,
                entry="in", volume=req.volume, price=res.price,
                commission=-round(broker.commission_per_lot * req.volume, 2), magic=req.magic, comment=req.comment,
                time=clock.now(), reason="client")
    cols = ",".join(f'"{c}"' for c in _DEAL_COLS)
    row = broker.store._conn.execute(f"SELECT {cols} FROM deals WHERE ticket=?", (res.deal,)).fetchone()
    typeofs = ",".join("typeof(" + f'"{c}"' + ")" for c in _DEAL_COLS)
    types = broker.store._conn.execute(f"SELECT {typeofs} FROM deals WHERE ticket=?", (res.deal,)).fetchone()
    assert tuple(row) == _deal_values(want)
    assert [type(v) for v in row] == [type(v) for v in _deal_values(want)]
    assert tuple(types) == tuple({int: "integer", float: "real", str: "text"}[type(v)] for v in _deal_values(want))
    assert broker.history_deals(res.order) == [want]
    broker.close()
