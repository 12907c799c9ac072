"""Review of the "EXIT FAILED" page when a close keeps failing cycle after cycle (real XAUUSDc bars).

A trade whose time limit passes after Friday's last bar cannot be closed until the market reopens:
every cycle the exit rule fires again, the close is refused (market closed) and the trader was paged
"EXIT FAILED - close it manually" again, since the alert layer's dedup window (300 s) is no longer
than a cycle: ~12 pages an hour, ~600 over a weekend; and each refusal was an error event, so within
the hour new entries were auto-disabled until a human /resumed. Now a failing exit of one trade pages
once, then at most hourly; a closed market is said to be one (no "close it manually" the trader
cannot do either), is journalled but not counted as a fault, and is not retried at wider deviations.
"""
from __future__ import annotations

import lifecycle_helpers as k
import numpy as np
import pytest

from core.domain.models import Direction
from core.ops.notify import REMINDER_SECONDS as HOURLY


@pytest.fixture(scope="module")
def cfg():
    return k.config({"exits": {"max_minutes_in_trade": 5}})


async def test_a_close_refused_all_weekend_pages_once_then_hourly(cfg, tmp_path):
    bars = k.m5(cfg)
    gaps = np.where(np.diff(bars["time"]) > 86_400)[0]
    last = int(gaps[gaps > 30000][0])  # Friday's last bar before a weekend
    svc, clock, inner = await k.paper_service(cfg, tmp_path, float(bars["time"][last]), start=False)
    got = k.collect_alerts(svc, "telegram")
    await svc.start(monitor=False)
    (ticket,) = await k.open_trades(svc, "XAUUSDc")
    clock.advance(600)  # the weekend: no bar covers the time, the broker refuses trades

    exits_tried = 0
    for _ in range(12):  # an hour of 5-minute cycles
        rep = await svc.monitor.run_cycle()
        exits_tried += any(s.kind == "max_time_in_trade" for s in rep.signals)
        clock.advance(cfg.monitor.interval_seconds + 5)
    await svc.alerts.drain()
    assert exits_tried == 12 and svc.exits.get(ticket) is not None  # every cycle tried; still open
    events = [e.event for e in svc.store.journal.for_ticket(ticket)]
    assert events.count("exit_failed") == 12  # each refusal is journalled with its attempts
    pages = [a for a in got if a.kind == "exit_failed" and a.ticket == ticket]
    assert len(pages) == 1 and "when trading resumes" in pages[0].text and "manually" not in pages[0].text
    # a closed market is no fault: it counts toward no auto-disable, and one attempt per cycle is enough
    assert not svc.store.errors.recent(50, "exit_order_fails") and svc.notifier.entries_blocked() is None
    assert svc.broker.calls["close_position"] == 12

    clock.advance(HOURLY)
    await svc.monitor.run_cycle()
    await svc.alerts.drain()
    assert len([a for a in got if a.kind == "exit_failed" and a.ticket == ticket]) == 2  # hourly reminder
    svc.store.close()
    inner.close()


async def test_a_range_invalidation_that_cannot_be_acted_on_pages_once_then_hourly(cfg, tmp_path):
    """The same for the CRITICAL "RANGE INVALIDATED - closing the trade now" page: the closes outside the
    range stay the last closes all weekend, so the rule fired and paged every cycle."""
    bars = k.m5(cfg)
    gaps = np.where(np.diff(bars["time"]) > 86_400)[0]
    last = int(gaps[gaps > 30000][0])
    # a few closes since entry before the weekend
    svc, clock, inner = await k.paper_service(cfg, tmp_path, float(bars["time"][last - 3]), start=False)
    got = k.collect_alerts(svc, "telegram")
    await svc.start(monitor=False)
    (ticket,) = await k.open_trades(svc, "XAUUSDc")
    clock.set(float(bars["time"][last]) + 600)
    assert svc.broker.positions()  # SL/TP not hit before the close of the week
    # Friday's last closes are all above this trade's range: the market has left it
    top = float(bars["close"][last - 5:last + 1].min()) - 20 * svc.exits.get(ticket).range_data.atr

    def moved(t):
        return {"range_data": t.range_data.model_copy(update={"range_high": top, "range_low": top - 5.0})}

    svc.exits.update_trade_state(ticket, moved)
    kinds = []
    for _ in range(12):
        rep = await svc.monitor.run_cycle()
        kinds += [s.kind for s in rep.signals if s.ticket == ticket][:1]
        clock.advance(cfg.monitor.interval_seconds + 5)
    await svc.alerts.drain()
    assert kinds == ["range_invalidated"] * 12 and svc.exits.get(ticket) is not None
    assert len([a for a in got if a.kind == "range_invalidated" and a.ticket == ticket]) == 1
    assert len([a for a in got if a.kind == "exit_failed" and a.ticket == ticket]) == 1
    # a closed market is not a system fault: it must not switch new entries off for Monday morning
    assert svc.notifier.entries_blocked() is None, svc.notifier.entries_blocked()
    assert not [a for a in got if a.kind == "auto_disabled"]
    svc.store.close()
    inner.close()


async def test_a_breakeven_move_refused_all_weekend_is_no_fault(tmp_path):
    """A trade past its breakeven trigger at Friday's close asks for the stop move every cycle; each
    refusal (market closed) was an error event: 12 an hour per such trade toward the 20-an-hour
    auto-disable, so two of them switched new entries off for Monday. The move is still tried each cycle."""
    cfg = k.config({"exits": {"max_minutes_in_trade": 100_000, "stall_minutes": 100_000}})
    bars = k.m5(cfg)
    gaps = np.where(np.diff(bars["time"]) > 86_400)[0]
    last = int(gaps[gaps > 30000][0])
    # the side that Friday's last bars moved in favour of
    d = Direction.LONG if bars["close"][last] > bars["open"][last - 3] else Direction.SHORT
    svc, clock, inner = await k.paper_service(cfg, tmp_path, float(bars["time"][last - 3]), direction=d)
    (ticket,) = await k.open_trades(svc, "XAUUSDc")
    clock.set(float(bars["time"][last]) + 600)
    q = inner.tick("XAUUSDc")
    t = svc.exits.get(ticket)
    profit = ((q.bid if d is Direction.LONG else q.ask) - t.entry_price) * d.sign
    assert inner.positions() and profit > 0.3, "needs a trade in profit at the close of the week"
    # its risk as planned were a third of the profit at Friday's close: the breakeven rule wants the stop moved
    svc.exits.update_trade_state(ticket, {"initial_sl": t.entry_price - d.sign * profit / 3})

    for _ in range(24):  # two hours of 5-minute cycles
        rep = await svc.monitor.run_cycle()
        assert [s.kind for s in rep.signals] == ["breakeven"] and rep.sl_moves == 0
        clock.advance(cfg.monitor.interval_seconds + 5)
    assert svc.notifier.entries_blocked() is None, svc.notifier.entries_blocked()
    assert not svc.store.errors.recent(50, "breakeven_failed")
    svc.store.close()
    inner.close()
