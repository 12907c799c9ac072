"""Approval → execution on the real-data paper broker: authorization in core, idempotency, expiry,
price validation, stops level, the kill switch, auto-execution, retries and exactly-once."""
from __future__ import annotations

import asyncio
import threading

import lifecycle_helpers as k
import numpy as np
import pytest

from core.brokers.base import BrokerTimeoutError, NoMoneyError, RequoteError, SymbolInfo
from core.domain.clock import FixedClock
from core.domain.exceptions import NotAuthorizedError
from core.domain.models import Direction, ProposalState
from core.trading.order_checks import adjust_stops, normalise_lot, validate_entry_price

SYMBOL = "XAUUSDc"
START = 30000
CONCURRENT_CFG = {"exits": {"reentry_cooldown_minutes": 0, "max_reentries_per_range": 100}}


@pytest.fixture(scope="module")
def cfg():
    return k.config()


@pytest.fixture(scope="module")
def bars(cfg):
    return k.m5(cfg, SYMBOL)


def _setup_at(broker, bars, offset_pct=0.0, risk=3.0, direction=Direction.LONG):
    """A setup priced off the broker's real quote now (optionally `offset_pct` away from it)."""
    tick = broker.tick(SYMBOL)
    px = tick.ask if direction is Direction.LONG else tick.bid
    entry = round(px * (1 + offset_pct / 100), 2)
    sign = direction.sign
    return k.Setup(0, direction, entry, round(entry - sign * risk, 2), round(entry + sign * 2 * risk, 2))


async def _svc(cfg, bars, tmp_path, flaky=True, confidence=70.0, offset_pct=0.0, risk=3.0):
    clock = FixedClock(float(bars["time"][START]))
    inner = k.paper_broker(cfg, tmp_path / "paper.sqlite", clock)
    broker = k.FlakyBroker(inner) if flaky else inner
    inner.connect()
    holder = {}

    def analyser(sym):
        setup = holder.get("setup") or _setup_at(inner, bars, offset_pct, risk)
        return k.analysis_at(sym, bars, clock.now(), setup, confidence=confidence)

    svc = k.service(cfg, tmp_path, clock, broker=broker, analyser=analyser)
    await svc.start(monitor=False)
    svc.holder = holder
    return svc


async def test_only_traders_may_approve_and_the_refusal_is_polite(cfg, bars, tmp_path):
    svc = await _svc(cfg, bars, tmp_path)
    _, props = await svc.propose(SYMBOL)
    for who in (k.VIEWER, k.STRANGER, None, "garbage"):
        with pytest.raises(NotAuthorizedError) as e:
            await svc.approve(props[0].id, who)
        assert "Sorry" in e.value.message
    # the allowlist is enforced by the engine itself, not only by the facade
    with pytest.raises(NotAuthorizedError):
        await svc.execution.approve(props[0].id, k.VIEWER)
    assert svc.store.proposals.get(props[0].id).state is ProposalState.PENDING
    assert svc.broker.calls.get("market_order", 0) == 0
    svc.authorize(k.VIEWER, "status")  # viewers may read
    with pytest.raises(NotAuthorizedError):
        svc.pause(k.VIEWER)
    out = await svc.approve(props[0].id, k.TRADER)
    assert out.ok and out.state is ProposalState.EXECUTED


async def test_double_tap_and_replayed_callback_execute_once(cfg, bars, tmp_path):
    svc = await _svc(cfg, bars, tmp_path)
    _, props = await svc.propose(SYMBOL)
    pid = props[0].id
    first = await svc.approve(pid, k.TRADER)
    again = await svc.approve(pid, k.TRADER)
    assert first.ok and not first.duplicate
    assert again.duplicate and again.ticket == first.ticket and "Already handled" in again.message
    assert svc.broker.calls["market_order"] == 1
    rej = await svc.reject(pid, k.TRADER)  # a late reject of an executed proposal changes nothing
    assert not rej.ok and rej.state is ProposalState.EXECUTED
    unknown = await svc.approve("nope", k.TRADER)
    assert not unknown.ok and "can't find" in unknown.message


async def test_many_concurrent_approvals_send_one_order_per_proposal(tmp_path, bars):
    cfg = k.config(CONCURRENT_CFG)
    svc = await _svc(cfg, bars, tmp_path)
    existing = await k.open_trades(svc, SYMBOL, 2)
    pids = []
    for _ in range(8):
        _, props = await svc.propose(SYMBOL)
        pids.append(props[0].id)
    # 6 racing approvals per proposal on the loop, plus 2 per proposal from other threads' own loops
    thread_results = []

    def from_thread(pid):
        thread_results.append(asyncio.run(svc.execution.approve(pid, k.TRADER)))

    def bump(trade):
        return {"metadata": {**trade.metadata, "n": trade.metadata.get("n", 0) + 1}}

    def updater(ticket):  # the monitor / chat side mutating open trades meanwhile
        for _ in range(25):
            svc.exits.update_trade_state(ticket, bump)

    threads = [threading.Thread(target=from_thread, args=(p,)) for p in pids for _ in range(2)]
    threads += [threading.Thread(target=updater, args=(t,)) for t in existing for _ in range(3)]
    for t in threads:
        t.start()
    outs = await asyncio.gather(*[svc.approve(p, k.TRADER) for p in pids for _ in range(6)],
                                *[asyncio.to_thread(updater, t) for t in existing])
    outs = [o for o in outs if o is not None]
    for t in threads:
        t.join()
    for t in existing:  # 3 threads + 1 task, 25 updates each: none lost, in memory and in the store
        assert svc.exits.get(t).metadata["n"] == 100 and svc.store.trades.get(t).metadata["n"] == 100
    outs += thread_results
    assert svc.broker.calls["market_order"] == len(pids) + len(existing)
    positions = [p for p in svc.broker.positions(magic=cfg.execution.magic_number) if p.ticket not in existing]
    assert sorted(p.comment.split(":")[1] for p in positions) == sorted(pids)
    for pid in pids:
        mine = [o for o in outs if o.proposal_id == pid]
        assert sum(1 for o in mine if not o.duplicate and o.ok) == 1
        assert svc.store.proposals.get(pid).state is ProposalState.EXECUTED
    assert svc.range_scalp_tickets() == {p.ticket for p in positions} | set(existing)
    assert svc.store.journal.count("opened") == len(pids) + len(existing)


async def test_expired_proposal_is_not_executed(cfg, bars, tmp_path):
    svc = await _svc(cfg, bars, tmp_path)
    _, props = await svc.propose(SYMBOL)
    svc.clock.advance(cfg.execution.proposal_expiry_seconds + 1)
    out = await svc.approve(props[0].id, k.TRADER)
    assert not out.ok and out.state is ProposalState.EXPIRED and "expired" in out.message
    assert svc.broker.calls.get("market_order", 0) == 0


async def test_price_moved_too_far_is_refused_with_a_trader_sentence(cfg, bars, tmp_path):
    svc = await _svc(cfg, bars, tmp_path, offset_pct=-0.3)  # the market is now 0.3 % above the entry
    _, props = await svc.propose(SYMBOL)
    out = await svc.approve(props[0].id, k.TRADER)
    assert not out.ok and out.state is ProposalState.FAILED
    assert "moved up 0.30%" in out.message and "did not trade" in out.message
    assert svc.broker.calls.get("market_order", 0) == 0
    assert svc.store.errors.recent(5, "price_validation_fails")


def test_validate_entry_price_and_stops_level_units():
    ok = validate_entry_price(Direction.SHORT, 100.0, bid=100.05, ask=100.07, max_slippage_pct=0.1)
    assert ok.ok and ok.current_price == 100.05
    bad = validate_entry_price(Direction.SHORT, 100.0, bid=99.8, ask=99.82, max_slippage_pct=0.1)
    assert not bad.ok and "moved down 0.20%" in bad.message
    info = SymbolInfo(name="X", digits=2, point=0.01, trade_stops_level=20, volume_step=0.01, volume_min=0.01)
    sl, tp, notes = adjust_stops(Direction.LONG, 100.0, 99.95, 103.0, info, spread=0.05)
    assert sl == pytest.approx(100.0 - 0.21 - 0.05) and tp == 103.0 and len(notes) == 1
    sl, tp, notes = adjust_stops(Direction.SHORT, 100.0, 101.0, 99.9, info)
    assert sl == 101.0 and tp == pytest.approx(99.79) and "TP" in notes[0]
    assert normalise_lot(0.013, info) == 0.01 and normalise_lot(0.0, info) == 0.01


async def test_sl_inside_the_stops_level_is_widened_and_noted(cfg, bars, tmp_path):
    svc = await _svc(cfg, bars, tmp_path, risk=0.05)  # 5 points: inside XAUUSDc's 20-point stops level
    _, props = await svc.propose(SYMBOL)
    out = await svc.approve(props[0].id, k.TRADER)
    assert out.ok and "stops level" in out.message
    pos = svc.broker.positions()[0]
    assert pos.price_open - pos.sl >= 0.2


async def test_kill_switch_blocks_entries_until_resume(cfg, bars, tmp_path):
    svc = await _svc(cfg, bars, tmp_path)
    _, props = await svc.propose(SYMBOL)
    svc.pause(k.TRADER, "news")
    out = await svc.approve(props[0].id, k.TRADER)
    assert not out.ok and "paused" in out.message.lower()
    assert svc.store.proposals.get(props[0].id).state is ProposalState.PENDING
    svc.resume(k.TRADER)
    out = await svc.approve(props[0].id, k.TRADER)
    assert out.ok


@pytest.mark.parametrize("confidence, executed", [(90.0, True), (85.0, False), (60.0, False)])
async def test_auto_execution_only_when_enabled_and_above_threshold(bars, tmp_path, confidence, executed):
    cfg = k.config({"execution": {"auto_execute_enabled": True, "auto_execute_confidence_threshold": 85}})
    svc = await _svc(cfg, bars, tmp_path, confidence=confidence)
    _, props = await svc.propose(SYMBOL)
    assert (props[0].state is ProposalState.EXECUTED) is executed
    assert (props[0].decided_by == "auto") is executed
    assert svc.broker.calls.get("market_order", 0) == int(executed)


async def test_auto_execution_is_off_by_default(cfg, bars, tmp_path):
    svc = await _svc(cfg, bars, tmp_path, confidence=99.0)
    _, props = await svc.propose(SYMBOL)
    assert props[0].state is ProposalState.PENDING


async def test_requote_is_retried_per_policy(cfg, bars, tmp_path):
    svc = await _svc(cfg, bars, tmp_path)
    _, props = await svc.propose(SYMBOL)
    svc.broker.fail("market_order", RequoteError("requote", 10004))
    out = await svc.approve(props[0].id, k.TRADER)
    assert out.ok and svc.broker.calls["market_order"] == 2
    assert len(svc.broker.positions()) == 1


async def test_timeout_after_the_order_reached_the_broker_is_not_sent_again(cfg, bars, tmp_path):
    svc = await _svc(cfg, bars, tmp_path)
    _, props = await svc.propose(SYMBOL)
    svc.broker.fail_after("market_order", BrokerTimeoutError("no reply", 10012))
    out = await svc.approve(props[0].id, k.TRADER)
    assert out.ok and out.state is ProposalState.EXECUTED
    assert svc.broker.calls["market_order"] == 1  # found by its comment instead of resending
    assert len(svc.broker.positions()) == 1


async def test_refused_order_fails_the_proposal_and_alerts(cfg, bars, tmp_path):
    svc = await _svc(cfg, bars, tmp_path)
    _, props = await svc.propose(SYMBOL)
    svc.broker.fail("market_order", NoMoneyError("not enough money", 10019))
    out = await svc.approve(props[0].id, k.TRADER)
    assert not out.ok and out.state is ProposalState.FAILED and "nothing was traded" in out.message
    assert svc.broker.calls["market_order"] == 1  # not retryable
    assert [a.kind for a in svc.notifier.sent] == ["execution_failed"]
    assert svc.store.errors.recent(5, "execution_failed_after_approval")


async def test_reentry_rules_refuse_a_third_entry_on_the_same_range(bars, tmp_path):
    cfg = k.config({"exits": {"reentry_cooldown_minutes": 0, "max_reentries_per_range": 1}})
    svc = await _svc(cfg, bars, tmp_path)
    outs = []
    for _ in range(2):
        _, props = await svc.propose(SYMBOL)
        outs.append(await svc.approve(props[0].id, k.TRADER))
    assert [o.ok for o in outs] == [True, True]
    # the third card offers no Approve and says why ...
    analysis, props = await svc.propose(SYMBOL)
    assert props == [] and not analysis.passed
    assert "already been traded 2 time(s)" in analysis.failures[-1].reason
    # ... and a proposal made before the second entry is refused when it is sent
    (stale,) = svc.execution.create_proposals(analysis.model_copy(update={"passed": True, "filters": []}))
    out = await svc.approve(stale.id, k.TRADER)
    assert not out.ok and "already been traded 2 time(s)" in out.message
    assert np.sum([p.magic == cfg.execution.magic_number for p in svc.broker.positions()]) == 2


async def test_unconfirmed_order_is_never_resent_and_a_late_fill_is_adopted(cfg, bars, tmp_path):
    from core.brokers.base import OrderRequest
    from core.brokers.tags import order_comment

    svc = await _svc(cfg, bars, tmp_path)
    _, props = await svc.propose(SYMBOL)
    p = props[0]
    svc.broker.fail("market_order", BrokerTimeoutError("no reply from the trade server", 10012))
    out = await svc.approve(p.id, k.TRADER)
    assert not out.ok and out.state is ProposalState.FAILED and "did not resend" in out.message
    assert svc.broker.calls["market_order"] == 1
    assert any(a.kind == "execution_unconfirmed" for a in svc.notifier.sent)
    # the order was in fact filled and shows up later: the next monitor cycle adopts it, linked to the proposal
    tick = svc.broker.inner.tick(SYMBOL)
    late = svc.broker.inner.market_order(OrderRequest(
        symbol=SYMBOL, side="buy", volume=0.01, sl=p.strategy.stop_loss, tp=p.strategy.take_profit, price=tick.ask,
        magic=cfg.execution.magic_number, comment=order_comment(p.id, p.strategy.strategy)))
    rep = await svc.monitor.run_cycle()
    assert late.position in svc.range_scalp_tickets() and rep.trades == 1
    t = svc.exits.get(late.position)
    assert t.proposal_id == p.id and t.range_data == p.analysis.range and t.exit_manager_state == "orphan"
    assert any(a.kind == "orphan_adopted" for a in svc.notifier.sent)


async def test_an_unexpected_bug_mid_execution_leaves_no_proposal_hanging(cfg, bars, tmp_path):
    svc = await _svc(cfg, bars, tmp_path)
    _, props = await svc.propose(SYMBOL)
    svc.broker.fail("market_order", RuntimeError("a bug in an adapter"))
    out = await svc.approve(props[0].id, k.TRADER)
    assert not out.ok and out.state is ProposalState.FAILED and "nothing was traded" in out.message
    assert not svc.broker.positions() and not svc.execution.in_flight
    assert svc.store.errors.recent(5, "execution_failed_after_approval")


async def test_the_outcomes_of_approve_and_reject_are_what_the_stored_rows_say(cfg, bars, tmp_path):
    """approve builds its outcome from the move it won and reject moves before it reads: neither reads the
    proposal back, so each answer must still match the row as stored, for a winner and for a repeat."""
    svc = await _svc(cfg, bars, tmp_path)
    fields = ("proposal_id", "state", "ok", "ticket", "fill_price", "symbol", "strategy")

    def same(out, pid, **overrides):
        want = svc.execution.outcome_of(svc.store.proposals.get(pid), duplicate=out.duplicate)
        want = want.model_copy(update=overrides)
        assert {f: getattr(out, f) for f in fields} == {f: getattr(want, f) for f in fields}

    _, props = await svc.propose(SYMBOL)
    done = await svc.approve(props[0].id, k.TRADER)
    assert done.ok and done.state is ProposalState.EXECUTED and done.ticket and done.fill_price
    same(done, props[0].id)
    late = svc.execution.reject(props[0].id, k.TRADER)
    assert late.duplicate and not late.ok
    same(late, props[0].id, ok=False)
    _, props = await svc.propose(SYMBOL)
    rej = svc.execution.reject(props[0].id, k.TRADER)
    assert rej.ok and not rej.duplicate and rej.state is ProposalState.REJECTED
    same(rej, props[0].id, ok=True)
    again = svc.execution.reject(props[0].id, k.TRADER)
    assert again.duplicate and not again.ok and "Already handled" in again.message
    missing = svc.execution.reject("nope", k.TRADER)
    assert not missing.ok and "can't find" in missing.message
