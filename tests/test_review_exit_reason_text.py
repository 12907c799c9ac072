"""The close alert names who closed the trade.

When our exit order finds the position already gone because its broker-side SL/TP filled first, the
journal says stop_loss/take_profit (from the deals). The alert and the journal's reason text used to
append our exit's reason unchanged ("stop_loss: closed by user 7"), which reads as if the stop had
fired *because of* that reason. Real PaperBroker on real XAUUSD bars: the replay runs until the
trade's own SL or TP fills while the bot is not looking, then the trader sends /close.
"""
from __future__ import annotations

import lifecycle_helpers as k
import pytest

SYMBOL = "XAUUSDc"


@pytest.fixture(scope="module")
def cfg():
    return k.config()


async def test_close_that_finds_the_broker_stop_already_filled_says_so(cfg, tmp_path):
    bars = k.m5(cfg, SYMBOL)
    # nobody watches: the broker's SL/TP is what closes it
    svc, clock, broker = await k.paper_service(cfg, tmp_path, float(bars["time"][30000]), wrap=None, connect=False)
    (ticket,) = await k.open_trades(svc, SYMBOL)
    for _ in range(2000):
        clock.advance(300)
        broker.advance_to(clock.now())
        if not broker.positions():
            break
    assert not broker.positions(), "the replay should reach the trade's SL or TP"

    out = await svc.close_trade(ticket, k.TRADER)

    closed = svc.store.closed.get(ticket)
    assert out.ok and closed is not None
    assert closed.exit_reason in ("stop_loss", "take_profit", "breakeven_stop")
    alert = [a for a in svc.notifier.sent if a.kind == "exit_executed" and a.ticket == ticket][-1]
    words = {"stop_loss": "stop loss", "take_profit": "take profit", "breakeven_stop": "breakeven stop"}[closed.exit_reason]
    assert f"Why: {words} hit at the broker before my exit (closed by hand) went out" in alert.text
    data = [e.data for e in svc.store.journal.for_ticket(ticket) if e.data and "reason_text" in e.data]
    assert data and data[-1]["reason_text"].startswith("hit at the broker before my manual_close exit")
