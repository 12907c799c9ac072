"""A paper exit's deal row is the one the `Deal` the booking built before would give.

`PaperOrders._book_exit` writes the row's values directly when each has the exact type its Deal field holds, and
builds a Deal otherwise. This compares the stored rows, value for value and SQLite type for type, with
`_deal_values(Deal(...))` built from the booking's arguments as the old code did: for a client close and for
SL/TP hits of the replay, with and without commission, and for odd argument types and a reason a Deal refuses
(the model's path: the same row, the same error)."""
from __future__ import annotations

import pytest
from broker_helpers import deal_row, opened_xau
from pydantic import ValidationError

from core.brokers.base import Deal
from core.brokers.paper.fills import profit
from core.brokers.paper.store import _deal_values

_TYPEOF = {int: "integer", float: "real", str: "text"}


def _old_deal(broker, p, vol, price, t, reason, order, deal, comment) -> Deal:
    """What `_book_exit` inserted before: a Deal of its arguments."""
    spec = broker.symbols[p.symbol]
    return Deal(ticket=deal, order=order, position_id=p.ticket, symbol=p.symbol,
                type="sell" if p.type == "buy" else "buy", entry="out", volume=vol, price=price,
                profit=profit(p.type, p.price_open, price, vol, spec.contract_size),
                commission=-round(broker.commission_per_lot * vol, 2), magic=p.magic, comment=comment,
                time=t, reason=reason)


def _open(tmp_path, side, commission, sl_pts=10.0, tp_pts=10.0, comment="rs:abc:bb_fade"):
    broker, clock, _req, res = opened_xau(tmp_path, side, commission, comment, sl_pts, tp_pts)
    booked = []
    real = broker._book_exit

    def spy(*a):
        booked.append(a)
        return real(*a)

    broker._book_exit = spy
    return broker, clock, res, booked


def _check(broker, booked):
    assert booked
    for args in booked:
        want = _deal_values(_old_deal(broker, *args))
        row, types = deal_row(broker, args[6])
        assert row == want
        assert [type(v) for v in row] == [type(v) for v in want]
        assert types == tuple(_TYPEOF[type(v)] for v in want)


@pytest.mark.parametrize("side,commission,comment", [("buy", 3.5, "rs:abc:bb_fade"), ("sell", 0.0, 'x",\'é')])
def test_a_client_close_books_the_deals_row(tmp_path, side, commission, comment):
    broker, clock, res, booked = _open(tmp_path, side, commission)
    clock.set(clock.now() + 300)
    broker.close_position(res.order, comment=comment)
    _check(broker, booked)
    broker.close()


@pytest.mark.parametrize("side,commission,sl_pts,tp_pts", [("buy", 3.5, 1.0, 30.0), ("sell", 0.0, 1.0, 30.0),
                                                           ("buy", 0.0, 30.0, 1.0), ("sell", 3.5, 30.0, 1.0)])
def test_sl_and_tp_hits_book_the_deals_row(tmp_path, side, commission, sl_pts, tp_pts):
    broker, clock, res, booked = _open(tmp_path, side, commission, sl_pts, tp_pts)
    for _ in range(200):
        if not broker.positions():
            break
        broker.step()
    assert [a[4] for a in booked] == ["sl" if sl_pts < tp_pts else "tp"]
    _check(broker, booked)
    broker.close()


def test_odd_types_go_through_the_deal_and_a_bad_reason_is_refused(tmp_path):
    broker, clock, res, booked = _open(tmp_path, "buy", 3.5)
    st = broker.store
    p = st.position(res.order)
    odd = (p, 0.01, int(p.price_open) + 1, int(clock.now()), "client", 900001, 900002, "odd")  # int price and time
    with st.transaction():
        broker._book_exit(*odd)
    _check(broker, [odd])
    assert [type(v) for v in deal_row(broker, 900002)[0]] == [int, int, int, str, str, str, float, float, float, float,
                                                          float, int, str, float, str]
    with pytest.raises(ValidationError):
        with st.transaction():
            broker._book_exit(p, 0.01, p.price_open, clock.now(), "bogus", 900003, 900004, "")
    assert deal_row(broker, 900004) == (None, None)
    broker.close()
