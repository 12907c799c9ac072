"""Review of /close racing the monitor's own exit of the same trade (real-data paper broker).

`close_trade` waited for an exit already in flight, but only before it fetched a price. When the
monitor started closing the trade during that fetch, the user's close found the exit in flight and
answered "failed"; /emergency then told the trader to close the ticket by hand in MetaTrader while
the bot was closing it.
"""
from __future__ import annotations

import asyncio
import time

import lifecycle_helpers as k
import pytest

NEAR = 1_746_003_600.0  # 2025-04-30 09:00 UTC, a quiet stretch (no SL/TP within a few bars)


@pytest.fixture(scope="module")
def cfg():
    return k.config({"exits": {"max_minutes_in_trade": 5}})


async def test_close_waits_for_the_monitors_exit_that_began_while_it_fetched_a_price(cfg, tmp_path):
    svc, _, inner = await k.paper_service(cfg, tmp_path, k.common_time(cfg, ("XAUUSDc",), near=NEAR))
    (ticket,) = await k.open_trades(svc, "XAUUSDc")
    inner.step()
    inner.step()  # past the 5-minute limit: the monitor's next cycle closes it
    real_tick, real_close = inner.tick, inner.close_position
    ticks = []

    def slow_first_tick(symbol):  # /close's price fetch is slow; the monitor's own fetch is not
        ticks.append(symbol)
        if len(ticks) == 1:
            time.sleep(0.3)
        return real_tick(symbol)

    def slow_close(*a, **kw):  # the monitor's exit is still in flight when /close has its price
        time.sleep(0.6)
        return real_close(*a, **kw)

    inner.tick, inner.close_position = slow_first_tick, slow_close
    user = asyncio.create_task(svc.close_trade(ticket, k.TRADER))
    await asyncio.sleep(0.05)
    rep, out = await asyncio.gather(svc.monitor.run_cycle(), user)
    assert rep.exits == 1, rep.errors
    assert out.ok, out.message
    assert out.ticket == ticket and f"Closed ticket {ticket}" in out.message
    assert svc.broker.calls.get("close_position") == 1  # one close order, the monitor's
    assert svc.store.closed.get(ticket).exit_reason == "max_time_in_trade"
    svc.store.close()
    inner.close()


async def test_a_close_the_broker_executed_is_reported_closed_before_its_deals_are_readable(cfg, tmp_path):
    """MT5's history can lag an executed close. The close order went through, but with its deals not yet
    readable /close answered ok=False, and /emergency told the trader to close the ticket by hand."""
    from core.brokers.base import BrokerError

    svc, _, inner = await k.paper_service(cfg, tmp_path, k.common_time(cfg, ("XAUUSDc",), near=NEAR))
    tickets = await k.open_trades(svc, "XAUUSDc", 2)
    svc.broker.fail("history_deals", BrokerError("history not synchronised yet"))
    out = await svc.emergency(k.TRADER)
    assert out.ok, out.message
    assert "Could NOT close" not in out.message and all(o.ok for o in out.outcomes)
    assert not inner.positions()
    first = out.outcomes[0]
    assert first.ticket == tickets[0] and "journal" in first.message
    await svc.monitor.run_cycle()  # the next cycle journals it from the deals
    assert all(svc.store.closed.get(t) is not None for t in tickets) and not svc.range_scalp_tickets()
    svc.store.close()
    inner.close()


async def test_emergency_counts_a_trade_the_monitor_journalled_meanwhile_as_closed(cfg, tmp_path):
    """/emergency closes its snapshot of trades one by one. A trade whose stop (or a human in MT5) closed it
    while an earlier close was in flight is journalled by the monitor's cycle; /emergency then found no
    open trade for that ticket and reported it as NOT closed, to be closed by hand."""
    svc, _, inner = await k.paper_service(cfg, tmp_path, k.common_time(cfg, ("XAUUSDc",), near=NEAR))
    first, second = await k.open_trades(svc, "XAUUSDc", 2)
    inner.close_position(second)  # a human closes it in MetaTrader; the bot has not seen it yet
    real_close = inner.close_position

    def slow_close(*a, **kw):
        time.sleep(0.3)
        return real_close(*a, **kw)

    inner.close_position = slow_close
    task = asyncio.create_task(svc.emergency(k.TRADER))
    await asyncio.sleep(0.05)  # the first close is in flight
    rep = await svc.monitor.run_cycle()
    assert rep.broker_closes == 1  # the monitor journalled the second meanwhile
    out = await task
    assert out.ok and "Could NOT close" not in out.message, out.message
    assert [o.ticket for o in out.outcomes] == [first, second] and all(o.ok for o in out.outcomes)
    assert svc.store.closed.get(second).exit_reason == "closed_outside_bot"
    svc.store.close()
    inner.close()
