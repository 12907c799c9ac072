"""A late fill that closed while the bot was down: found in the deal history and journalled once.

The sequence (issue 5's "the journal agrees with the broker's deal history"): the broker does not
confirm an order, so its proposal is marked failed; the order lands anyway; the bot goes down; the
position's SL/TP closes it. It is then neither open (no orphan to adopt) nor stored (no "closed while
down"): only a deal-history scan at start-up can journal it. Real restarts on the paper broker's own
SQLite, as in tests/test_recovery_startup.py.
"""
from __future__ import annotations

import lifecycle_helpers as k
import pytest

from core.brokers.base import OrderRequest
from core.brokers.tags import order_comment
from core.domain.clock import FixedClock
from core.domain.models import ProposalState
from core.exits.adoption import DEAL_SCAN_KEY, DEAL_SCAN_OVERLAP
from core.ops.alert_texts import exit_reason_words

SYMBOL = "XAUUSDc"


@pytest.fixture(scope="module")
def cfg():
    return k.config()


@pytest.fixture(scope="module")
def t0(cfg):
    return float(k.m5(cfg)["time"][30000])


async def _life(cfg, tmp_path, t0):
    svc, _, _ = await k.paper_service(cfg, tmp_path, t0, connect=False)
    return svc


def _end(svc):
    svc.store.close()
    svc.broker.inner.close()


def _run_broker_until_flat(cfg, tmp_path, t0):
    """The bot is down; the replay goes on at the broker until SL/TP closes every position."""
    broker = k.paper_broker(cfg, tmp_path / "paper.sqlite", FixedClock(t0))
    broker.connect()
    for _ in range(500):
        broker.step()
        if not broker.positions():
            break
    assert not broker.positions()
    broker.close()


def _journal_agrees_with_deals(store, broker, magic):
    """The crash test's invariant: every position closed at the broker is journalled with its deals."""
    by_pos = {}
    for d in broker.history_deals():
        if d.magic == magic:
            by_pos.setdefault(d.position_id, []).append(d)
    for pos_id, ds in by_pos.items():
        ct = store.closed.get(pos_id)
        assert ct is not None, f"position {pos_id} closed at the broker but not journalled"
        outs = [d for d in ds if d.entry == "out"]
        assert ct.exit_price == pytest.approx(sum(d.price * d.volume for d in outs) / sum(d.volume for d in outs))
        assert ct.pnl == pytest.approx(sum(d.profit + d.swap for d in ds))


async def test_failed_proposal_whose_order_landed_and_closed_while_down_is_journalled_once(cfg, tmp_path, t0):
    magic = cfg.execution.magic_number
    svc = await _life(cfg, tmp_path, t0)
    _, props = await svc.propose(SYMBOL)
    p = props[0]
    assert svc.store.proposals.transition(p.id, ProposalState.PENDING, ProposalState.APPROVED)
    assert svc.store.proposals.transition(p.id, ProposalState.APPROVED, ProposalState.EXECUTING)
    # the broker did not confirm the order and it was not found: execution failed the proposal ...
    assert svc.store.proposals.transition(p.id, ProposalState.EXECUTING, ProposalState.FAILED,
                                          message="The broker did not confirm the order")
    # ... but the request had reached the server and lands afterwards
    s = p.strategy
    tick = svc.broker.inner.tick(SYMBOL)
    side = "buy" if s.direction.value == "long" else "sell"
    res = svc.broker.inner.market_order(OrderRequest(
        symbol=SYMBOL, side=side, volume=0.01, sl=round(s.stop_loss, 2), tp=round(s.take_profit, 2),
        price=tick.ask if side == "buy" else tick.bid, magic=magic, comment=order_comment(p.id, s.strategy)))
    ticket = res.position
    _end(svc)  # the bot goes down before any monitor cycle or restart saw the position
    _run_broker_until_flat(cfg, tmp_path, t0)

    svc2 = await _life(cfg, tmp_path, t0)
    rep = svc2.recovery
    assert rep.closed_unknown == [ticket]
    assert not rep.orphans_adopted and not rep.closed_while_down and not svc2.range_scalp_tickets()
    assert [e.event for e in svc2.store.journal.for_ticket(ticket)] == ["adopted", "closed"]
    ct = svc2.store.closed.get(ticket)
    out = [d for d in svc2.broker.history_deals(position_id=ticket) if d.entry == "out"][-1]
    assert ct.exit_price == pytest.approx(out.price) and ct.exit_reason in ("stop_loss", "take_profit")
    assert ct.proposal_id == p.id and ct.strategy == s.strategy and ct.initial_sl == pytest.approx(s.stop_loss)
    assert ct.metadata["entry_reason"] == "late_fill_found_in_history"
    assert svc2.store.proposals.get(p.id).state is ProposalState.FAILED  # its history stays as it happened
    alerts = [a for a in svc2.notifier.sent if a.kind == "orphan_adopted"]
    assert len(alerts) == 1 and alerts[0].severity == "critical" and str(ticket) in alerts[0].title
    # its result reads as on the trade's close page: the reason in words, money after commission
    assert ct.exit_reason not in alerts[0].text and exit_reason_words(ct.exit_reason) in alerts[0].text
    assert f"P&L {ct.pnl - abs(ct.commission):+.2f} after commission" in alerts[0].text
    assert svc2.store.errors.recent(5, "orphaned_trades")
    _journal_agrees_with_deals(svc2.store, svc2.broker.inner, magic)
    assert svc2.broker.calls.get("market_order", 0) == 0
    _end(svc2)

    svc3 = await _life(cfg, tmp_path, t0)  # a second restart journals nothing twice
    assert svc3.recovery.closed_unknown == []
    assert [e.event for e in svc3.store.journal.for_ticket(ticket)] == ["adopted", "closed"]
    assert svc3.store.journal.count("closed") == 1
    assert not [a for a in svc3.notifier.sent if a.kind == "orphan_adopted"]
    _journal_agrees_with_deals(svc3.store, svc3.broker.inner, magic)
    _end(svc3)


def _manual_position(svc, magic):
    tick = svc.broker.inner.tick(SYMBOL)
    return svc.broker.inner.market_order(OrderRequest(
        symbol=SYMBOL, side="buy", volume=0.01, sl=round(tick.bid - 3, 2), tp=round(tick.ask + 3, 2),
        price=tick.ask, magic=magic, comment="rs:-:manual")).position


async def test_position_without_a_proposal_is_journalled_and_the_window_bounds_the_scan(cfg, tmp_path, t0):
    magic = cfg.execution.magic_number
    svc = await _life(cfg, tmp_path, t0)
    assert svc.store.kv.get(DEAL_SCAN_KEY) == pytest.approx(t0)  # first run, no proposal: nothing to look for
    ticket = _manual_position(svc, magic)
    _end(svc)
    _run_broker_until_flat(cfg, tmp_path, t0)

    svc2 = await _life(cfg, tmp_path, t0)
    assert svc2.recovery.closed_unknown == [ticket]
    ct = svc2.store.closed.get(ticket)
    assert ct.proposal_id is None and ct.strategy == "manual"
    _journal_agrees_with_deals(svc2.store, svc2.broker.inner, magic)
    # a later history row of ours outside the window (older than the last scan minus the overlap) is
    # not re-read: forget the journal of this one and move the watermark past it
    last = max(d.time for d in svc2.broker.history_deals(position_id=ticket))
    svc2.store.db.conn.execute("DELETE FROM closed_trades WHERE ticket=?", (ticket,))
    svc2.store.kv.set(DEAL_SCAN_KEY, last + DEAL_SCAN_OVERLAP + 60)
    _end(svc2)
    svc3 = await _life(cfg, tmp_path, t0)
    assert svc3.store.closed.get(ticket) is None  # unknown again, yet outside the window
    assert svc3.recovery.closed_unknown == []
    _end(svc3)


async def test_a_crash_between_adopting_and_closing_is_finished_by_the_next_start(cfg, tmp_path, t0):
    magic = cfg.execution.magic_number
    svc = await _life(cfg, tmp_path, t0)
    ticket = _manual_position(svc, magic)
    _end(svc)
    _run_broker_until_flat(cfg, tmp_path, t0)

    svc2, _, _ = await k.paper_service(cfg, tmp_path, t0, connect=False, start=False)

    async def dies(*_a, **_k):  # the process "dies" right after the adopted row was committed
        raise RuntimeError("killed")

    svc2.executor.record_broker_close = dies
    scanned_before = svc2.store.kv.get(DEAL_SCAN_KEY)
    await svc2.start(monitor=False)  # the start-up itself survives it
    assert svc2.recovery.closed_unknown == [] and svc2.store.kv.get(DEAL_SCAN_KEY) == scanned_before
    assert [e.event for e in svc2.store.journal.for_ticket(ticket)] == ["adopted"]
    _end(svc2)

    svc3 = await _life(cfg, tmp_path, t0)
    assert svc3.recovery.closed_while_down == [ticket] and svc3.recovery.closed_unknown == []
    assert [e.event for e in svc3.store.journal.for_ticket(ticket)] == ["adopted", "closed"]
    _journal_agrees_with_deals(svc3.store, svc3.broker.inner, magic)
    _end(svc3)
