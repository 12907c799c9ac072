"""Review of the paper broker's stop booking: a failed write must not lose an SL/TP hit.

`_sync` finds the bars that hit a position's stop, then books them in one transaction. It advanced
its checked-up-to mark before that transaction, so when the booking failed (database locked, disk
error) those bars were never looked at again: the position stayed open although price had gone
through its stop, and `close()` persisted the advanced mark, so not even a restart recovered it.
Real XAUUSDc M5 bars.
"""
from __future__ import annotations

import sqlite3

import lifecycle_helpers as k
import pytest

from core.brokers.base import OrderRequest
from core.domain.clock import FixedClock

SYMBOL = "XAUUSDc"


@pytest.fixture(scope="module")
def cfg():
    return k.config()


def test_a_stop_hit_whose_booking_failed_is_booked_on_the_next_look(cfg, tmp_path):
    clock = FixedClock(float(k.m5(cfg)["time"][30000]))
    broker = k.paper_broker(cfg, tmp_path / "paper.sqlite", clock)
    broker.connect()
    tick = broker.tick(SYMBOL)
    sl = round(tick.bid - 1.0, 2)
    ticket = broker.market_order(OrderRequest(symbol=SYMBOL, side="buy", volume=0.01, sl=sl, tp=0.0,
                                              price=tick.ask, magic=7, comment="t")).position
    real = broker.store.insert_order
    failed = []

    def disk_error(*a, **kw):
        failed.append(a)
        raise sqlite3.OperationalError("disk I/O error")

    broker.store.insert_order = disk_error
    for _ in range(500):  # step until the bar that takes the stop out (its booking fails)
        try:
            broker.step()
        except sqlite3.OperationalError:
            break
    assert failed, "the stop was never hit in the data window"
    hit_time = failed[0][9]
    broker.store.insert_order = real
    broker.step()  # the replay goes on: the hit must still be booked, at its own bar and level

    assert broker.positions() == []
    out = [d for d in broker.history_deals(position_id=ticket) if d.entry == "out"]
    assert len(out) == 1 and out[0].reason == "sl" and out[0].time == hit_time
    assert out[0].price <= sl
    broker.close()
