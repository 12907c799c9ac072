"""Start-up recovery in the seed's order: store → broker reconciliation by magic → orphans → monitor.
Every scenario is a real restart: a second service opens the same store and paper-broker files."""
from __future__ import annotations

import lifecycle_helpers as k
import pytest

from core.brokers.base import BrokerConnectionError, OrderRequest
from core.brokers.tags import order_comment
from core.domain.clock import FixedClock
from core.domain.exceptions import ProposalError
from core.domain.models import ActiveTrade, Direction, ProposalState

SYMBOL = "XAUUSDc"


@pytest.fixture(scope="module")
def cfg():
    return k.config()


@pytest.fixture(scope="module")
def t0(cfg):
    return float(k.m5(cfg)["time"][30000])


async def _life(cfg, tmp_path, t0, start=True, connect_failures=0):
    svc, _, _ = await k.paper_service(cfg, tmp_path, t0, connect=False, start=False)
    svc.broker.connect_failures = connect_failures
    if start:
        await svc.start(monitor=False)
    return svc


def _end(svc):
    svc.store.close()
    svc.broker.inner.close()


def _send_like_execution(svc, proposal, magic):
    """What execution does right before a crash: `executing` committed, the order sent with the id."""
    assert svc.store.proposals.transition(proposal.id, ProposalState.PENDING, ProposalState.APPROVED,
                                          decided_by=str(k.TRADER))
    assert svc.store.proposals.transition(proposal.id, ProposalState.APPROVED, ProposalState.EXECUTING)
    s = proposal.strategy
    tick = svc.broker.inner.tick(SYMBOL)
    return svc.broker.inner.market_order(OrderRequest(
        symbol=SYMBOL, side="buy", volume=0.01, sl=round(s.stop_loss, 2), tp=round(s.take_profit, 2),
        price=tick.ask, magic=magic, comment=order_comment(proposal.id, s.strategy)))


async def test_crash_after_send_is_resolved_from_the_order_comment_without_resending(cfg, tmp_path, t0):
    svc = await _life(cfg, tmp_path, t0)
    _, props = await svc.propose(SYMBOL)
    res = _send_like_execution(svc, props[0], cfg.execution.magic_number)
    _end(svc)  # the crash: nothing was recorded after the fill

    svc2 = await _life(cfg, tmp_path, t0)
    assert svc2.recovery.resolved_executing == [props[0].id]
    assert svc2.broker.calls.get("market_order", 0) == 0
    p = svc2.store.proposals.get(props[0].id)
    assert p.state is ProposalState.EXECUTED and p.ticket == res.position
    trade = svc2.exits.get(res.position)
    assert trade.proposal_id == p.id and trade.range_data == props[0].analysis.range
    assert svc2.range_scalp_tickets() == {res.position}
    assert [e.event for e in svc2.store.journal.for_ticket(res.position)] == ["opened"]
    again = await svc2.approve(p.id, k.TRADER)  # the trader taps again after the restart
    assert again.duplicate and svc2.broker.calls.get("market_order", 0) == 0
    assert not svc2.recovery.orphans_adopted


async def test_crash_before_send_fails_the_proposal_and_never_sends(cfg, tmp_path, t0):
    svc = await _life(cfg, tmp_path, t0)
    _, props = await svc.propose(SYMBOL)
    _, props2 = await svc.propose(SYMBOL)
    svc.store.proposals.transition(props[0].id, ProposalState.PENDING, ProposalState.APPROVED)
    svc.store.proposals.transition(props[0].id, ProposalState.APPROVED, ProposalState.EXECUTING)
    svc.store.proposals.transition(props2[0].id, ProposalState.PENDING, ProposalState.APPROVED)
    _end(svc)

    svc2 = await _life(cfg, tmp_path, t0)
    assert sorted(svc2.recovery.failed_interrupted) == sorted([props[0].id, props2[0].id])
    for pid in (props[0].id, props2[0].id):
        p = svc2.store.proposals.get(pid)
        assert p.state is ProposalState.FAILED and "nothing was traded" in p.message
        out = await svc2.approve(pid, k.TRADER)
        assert not out.ok and "nothing was traded" in out.message
    assert not svc2.broker.positions() and svc2.broker.calls.get("market_order", 0) == 0


async def test_trade_closed_while_down_is_journalled_from_deals(cfg, tmp_path, t0):
    svc = await _life(cfg, tmp_path, t0)
    (ticket,) = await k.open_trades(svc, SYMBOL)
    _end(svc)
    # while the bot is down, the replay runs on at the broker until its SL/TP closes the position
    clock = FixedClock(t0)
    broker = k.paper_broker(cfg, tmp_path / "paper.sqlite", clock)
    broker.connect()
    for _ in range(500):
        broker.step()
        if not broker.positions():
            break
    assert not broker.positions()
    broker.close()

    svc2 = await _life(cfg, tmp_path, t0)
    assert svc2.recovery.closed_while_down == [ticket] and not svc2.range_scalp_tickets()
    ct = svc2.store.closed.get(ticket)
    deal = [d for d in svc2.broker.history_deals(position_id=ticket) if d.entry == "out"][-1]
    assert ct.exit_price == pytest.approx(deal.price) and ct.pnl == pytest.approx(deal.profit)
    assert ct.metadata["trade_type"] == "range_scalp" and ct.exit_reason in ("stop_loss", "take_profit")
    assert [e.event for e in svc2.store.journal.for_ticket(ticket)] == ["opened", "closed"]
    assert "closed while the bot was down" in svc2.store.journal.for_ticket(ticket)[-1].data["reason_text"]


async def test_orphan_with_our_magic_is_adopted_and_alerted_others_are_left_alone(cfg, tmp_path, t0):
    svc = await _life(cfg, tmp_path, t0)
    tick = svc.broker.inner.tick(SYMBOL)
    magic = cfg.execution.magic_number
    ours = svc.broker.inner.market_order(OrderRequest(symbol=SYMBOL, side="sell", volume=0.01, sl=tick.bid + 5,
                                                      tp=tick.bid - 8, magic=magic, comment="rs:-:manual"))
    foreign = svc.broker.inner.market_order(OrderRequest(symbol=SYMBOL, side="buy", volume=0.01, magic=42,
                                                         comment="other ea"))
    _end(svc)

    svc2 = await _life(cfg, tmp_path, t0)
    assert svc2.recovery.orphans_adopted == [ours.position]
    assert svc2.range_scalp_tickets() == {ours.position} and foreign.position not in svc2.range_scalp_tickets()
    t = svc2.exits.get(ours.position)
    assert t.exit_manager_state == "orphan" and t.direction.value == "short" and t.strategy == "manual"
    assert [e.event for e in svc2.store.journal.for_ticket(ours.position)] == ["adopted"]
    assert any(a.kind == "orphan_adopted" and a.severity == "critical" for a in svc2.notifier.sent)
    assert svc2.store.errors.recent(5, "orphaned_trades")[0].severity == "critical"
    rep = await svc2.monitor.run_cycle()  # and it is monitored like any other
    assert rep.trades == 1 and not rep.errors


async def test_stop_moved_at_the_broker_but_not_saved_is_taken_from_the_broker(cfg, tmp_path, t0):
    svc = await _life(cfg, tmp_path, t0)
    (ticket,) = await k.open_trades(svc, SYMBOL)
    pos = svc.broker.inner.positions()[0]
    svc.broker.inner.modify_sltp(ticket, round(pos.sl - 1.0, 2), pos.tp)  # crash right after the modify
    _end(svc)
    svc2 = await _life(cfg, tmp_path, t0)
    assert svc2.recovery.stops_synced == [ticket]
    assert svc2.exits.get(ticket).sl == pytest.approx(pos.sl - 1.0)
    assert svc2.store.trades.get(ticket).sl == pytest.approx(pos.sl - 1.0)


async def test_commands_wait_for_recovery_and_broker_down_keeps_trades_monitored(cfg, tmp_path, t0):
    svc = await _life(cfg, tmp_path, t0)
    (ticket,) = await k.open_trades(svc, SYMBOL)
    _end(svc)
    svc2 = await _life(cfg, tmp_path, t0, start=False, connect_failures=1)
    with pytest.raises(ProposalError):
        await svc2.propose(SYMBOL)  # nothing is accepted before recovery ran
    rep = await svc2.start(monitor=False)
    assert not rep.broker_ok and rep.loaded_trades == 1
    assert svc2.range_scalp_tickets() == {ticket}  # loaded from the store even with the broker down
    assert any(a.kind == "connection_lost" for a in svc2.notifier.sent)
    svc2.broker.down = True  # the first cycle finds the broker still down, then it comes back
    cyc = await svc2.monitor.run_cycle()
    assert cyc.connected and cyc.trades == 1
    assert svc2.recovery.broker_ok and not svc2.monitor.reconcile_pending  # the full reconciliation re-ran
    assert BrokerConnectionError.retryable


async def test_recovery_of_many_stored_trades_is_fast_enough_to_not_matter(cfg, tmp_path, t0):
    """Functional guard for the bench: 200 stored trades (no broker positions) all get reconciled."""
    svc = await _life(cfg, tmp_path, t0)
    base = svc.store
    for i in range(200):
        t = ActiveTrade(ticket=900000 + i, symbol=SYMBOL, strategy="bb_fade", direction=Direction.LONG,
                        entry_price=100.0, sl=99.0, tp=102.0, initial_sl=99.0, volume=0.01, entry_time=t0,
                        magic=cfg.execution.magic_number)
        base.trades.add(t)
    _end(svc)
    svc2 = await _life(cfg, tmp_path, t0)
    assert svc2.recovery.loaded_trades == 200
    assert len(svc2.recovery.unresolved) == 200  # gone from the broker with no deals: flagged, kept watched
    assert any(a.kind == "state_mismatch" for a in svc2.notifier.sent)


async def test_a_trade_left_exiting_by_a_crash_is_judged_again_after_restart(t0, tmp_path):
    cfg = k.config({"exits": {"max_minutes_in_trade": 5}})
    svc = await _life(cfg, tmp_path, t0)
    (ticket,) = await k.open_trades(svc, SYMBOL)
    svc.exits.update_trade_state(ticket, {"exit_manager_state": "exiting"})  # crash before the close was sent
    _end(svc)
    svc2 = await _life(cfg, tmp_path, t0)
    assert svc2.exits.get(ticket).exit_manager_state == "exiting"
    svc2.broker.step()
    svc2.broker.step()
    rep = await svc2.monitor.run_cycle()
    assert rep.exits == 1 and not svc2.broker.positions()
    assert svc2.store.closed.get(ticket).exit_reason == "max_time_in_trade"
