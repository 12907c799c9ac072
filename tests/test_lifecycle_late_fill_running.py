"""A late fill that opens AND closes between two monitor cycles while the bot runs is journalled by the
running monitor (no restart), alerted once through the shared alert layer, and not journalled again
by later cycles or by the next start-up scan. Real data on the paper broker's own SQLite, as in
tests/test_recovery_late_fill.py (which covers the same sequence across a restart)."""
from __future__ import annotations

import lifecycle_helpers as k
import pytest

from core.brokers.base import BrokerTimeoutError, OrderRequest
from core.brokers.tags import order_comment
from core.domain.models import ProposalState
from core.exits.late_fills import SUSPECT_WATCH_SECONDS, SWEEP_SECONDS

SYMBOL = "XAUUSDc"


@pytest.fixture(scope="module")
def cfg():
    return k.config()


@pytest.fixture(scope="module")
def t0(cfg):
    return float(k.m5(cfg)["time"][30000])


async def _life(cfg, tmp_path, t0):
    svc, _, _ = await k.paper_service(cfg, tmp_path, t0, connect=False, start=False)
    delivered = k.collect_alerts(svc, "console")
    await svc.start(monitor=False)
    return svc, delivered


async def _end(svc):
    """An orderly shutdown: the alert workers finish before the store they record deliveries in is closed
    (left running, a worker wrote into the closed store while the test's loop was torn down)."""
    await svc.stop()
    svc.store.close()
    svc.broker.inner.close()


def _land(svc, side, sl, tp, comment):
    """The order reaches the broker after all (the request was on its way when the send timed out)."""
    tick = svc.broker.inner.tick(SYMBOL)
    return svc.broker.inner.market_order(OrderRequest(
        symbol=SYMBOL, side=side, volume=0.01, sl=round(sl, 2), tp=round(tp, 2),
        price=tick.ask if side == "buy" else tick.bid, magic=svc.cfg.execution.magic_number,
        comment=comment)).position


def _until_flat(svc):
    """Between two monitor cycles: the replay goes on until SL/TP has closed every position."""
    for _ in range(500):
        svc.broker.inner.step()
        if not svc.broker.inner.positions():
            return
    raise AssertionError("the position never closed")


async def _unconfirmed_proposal(svc):
    _, props = await svc.propose(SYMBOL)
    p = props[0]
    svc.broker.fail("market_order", BrokerTimeoutError("request timed out", 10012))
    out = await svc.approve(p.id, k.TRADER)
    assert not out.ok and svc.store.proposals.get(p.id).state is ProposalState.FAILED
    assert "did not confirm" in out.message
    return p


async def test_a_late_fill_closed_between_cycles_is_journalled_by_the_running_monitor_once(cfg, tmp_path, t0):
    svc, delivered = await _life(cfg, tmp_path, t0)
    p = await _unconfirmed_proposal(svc)
    s = p.strategy
    # it lands with stops a trader tightened by hand, so it closes before a 5-minute monitor cycle
    # would see it open (the real bars decide which one is hit)
    tick = svc.broker.inner.tick(SYMBOL)
    side = "buy" if s.direction.value == "long" else "sell"
    ticket = _land(svc, side, tick.bid - s.direction.sign * 1.0, tick.ask + s.direction.sign * 1.0,
                   order_comment(p.id, s.strategy))
    _until_flat(svc)
    assert svc.clock.now() - t0 < SUSPECT_WATCH_SECONDS  # still a suspect: scanned on this very cycle

    rep = await svc.monitor.run_cycle()
    assert rep.late_fills == 1, rep.errors
    assert [e.event for e in svc.store.journal.for_ticket(ticket)] == ["adopted", "closed"]
    ct = svc.store.closed.get(ticket)
    out = [d for d in svc.broker.inner.history_deals(position_id=ticket) if d.entry == "out"][-1]
    assert ct.exit_price == pytest.approx(out.price) and ct.exit_reason in ("stop_loss", "take_profit")
    assert ct.proposal_id == p.id and ct.initial_sl == pytest.approx(s.stop_loss)
    assert svc.metrics().trades == 1  # /metrics counts it
    await svc.alerts.drain()
    found = [a for a in delivered if a.kind == "orphan_adopted"]
    assert len(found) == 1 and str(ticket) in found[0].title and found[0].severity == "critical"
    assert svc.execution.unconfirmed == {}  # found: no more scanning on its account

    svc.clock.advance(SWEEP_SECONDS + 1)  # a later sweep reads the same history again
    scans = svc.broker.calls.get("history_deals", 0)
    rep2 = await svc.monitor.run_cycle()
    assert svc.broker.calls.get("history_deals", 0) > scans and rep2.late_fills == 0
    await svc.alerts.drain()
    assert len([a for a in delivered if a.kind == "orphan_adopted"]) == 1
    assert svc.store.journal.count("closed") == 1
    await _end(svc)

    svc2, delivered2 = await _life(cfg, tmp_path, svc.clock.now())  # the next start-up scan
    assert svc2.recovery.closed_unknown == [] and not svc2.recovery.closed_while_down
    assert [e.event for e in svc2.store.journal.for_ticket(ticket)] == ["adopted", "closed"]
    assert svc2.store.journal.count("closed") == 1 and len(svc2.store.closed.since(0)) == 1
    await svc2.alerts.drain()
    assert not [a for a in delivered2 if a.kind == "orphan_adopted"]
    assert svc2.broker.calls.get("market_order", 0) == 0
    await _end(svc2)


async def test_without_a_suspect_the_history_is_read_only_every_sweep(cfg, tmp_path, t0):
    """The cheap path: no unconfirmed order means no history read per cycle; the sweep still finds a
    position with our magic that opened and closed between cycles (here one without a proposal)."""
    svc, delivered = await _life(cfg, tmp_path, t0)
    before = svc.broker.calls.get("history_deals", 0)
    await svc.monitor.run_cycle()
    svc.clock.advance(SWEEP_SECONDS / 2)
    await svc.monitor.run_cycle()
    assert svc.broker.calls.get("history_deals", 0) == before

    tick = svc.broker.inner.tick(SYMBOL)
    ticket = _land(svc, "buy", tick.bid - 1, tick.ask + 1, "rs:-:manual")
    _until_flat(svc)
    svc.clock.set(max(svc.clock.now(), t0 + SWEEP_SECONDS))
    rep = await svc.monitor.run_cycle()
    assert rep.late_fills == 1 and svc.monitor.late_fills.journalled == [ticket]
    assert svc.store.closed.get(ticket).strategy == "manual"
    await svc.alerts.drain()
    assert len([a for a in delivered if a.kind == "orphan_adopted"]) == 1
    await _end(svc)


async def test_an_unconfirmed_order_that_is_open_at_a_cycle_is_adopted_and_no_longer_scanned_for(cfg, tmp_path, t0):
    svc, _ = await _life(cfg, tmp_path, t0)
    p = await _unconfirmed_proposal(svc)
    s = p.strategy
    ticket = _land(svc, "buy" if s.direction.value == "long" else "sell", s.stop_loss, s.take_profit,
                   order_comment(p.id, s.strategy))
    before = svc.broker.calls.get("history_deals", 0)
    rep = await svc.monitor.run_cycle()
    assert ticket in svc.range_scalp_tickets() and rep.late_fills == 0  # adopted as an orphan
    assert svc.execution.unconfirmed == {}
    assert svc.broker.calls.get("history_deals", 0) == before
    await _end(svc)
