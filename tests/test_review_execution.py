"""Review of the approval → send path: the kill switch must hold right up to the order, and an emergency
stop must not leave behind a position whose order was already on its way (real-data paper broker)."""
from __future__ import annotations

import asyncio
import threading

import lifecycle_helpers as k
import pytest

from core.brokers.base import RequoteError
from core.domain.clock import FixedClock
from core.domain.models import ProposalState

SYMBOL = "XAUUSDc"
START = 30000


@pytest.fixture(scope="module")
def cfg():
    return k.config()


@pytest.fixture(scope="module")
def bars(cfg):
    return k.m5(cfg, SYMBOL)


class HookBroker(k.FlakyBroker):
    """A FlakyBroker that runs `hooks[method]()` inside the broker call (in the worker thread)."""

    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.hooks: dict = {}

    def __getattr__(self, name):
        call = super().__getattr__(name)
        if not callable(call) or name not in self.hooks:
            return call

        def hooked(*a, **kw):
            hook = self.hooks.pop(name)
            hook()
            return call(*a, **kw)

        return hooked


async def _svc(cfg, bars, tmp_path):
    clock = FixedClock(float(bars["time"][START]))
    inner = k.paper_broker(cfg, tmp_path / "paper.sqlite", clock)
    inner.connect()
    broker = HookBroker(inner)

    def analyser(sym):
        tick = inner.tick(SYMBOL)
        entry = round(tick.ask, 2)
        setup = k.Setup(0, k.Direction.LONG, entry, round(entry - 3.0, 2), round(entry + 6.0, 2))
        return k.analysis_at(sym, bars, clock.now(), setup)

    svc = k.service(cfg, tmp_path, clock, broker=broker, analyser=analyser)
    await svc.start(monitor=False)
    return svc, inner


async def test_pause_while_pricing_the_order_blocks_the_send(cfg, bars, tmp_path):
    """The kill switch is checked at approval, but the engine then awaits the broker for a price; a
    /pause (or an auto-disable) landing during that await must still stop the order."""
    svc, inner = await _svc(cfg, bars, tmp_path)
    _, props = await svc.propose(SYMBOL)
    svc.broker.hooks["tick"] = lambda: svc.pause(k.TRADER, "news in 1 minute")
    out = await svc.approve(props[0].id, k.TRADER)
    assert svc.broker.calls.get("tick", 0) >= 1  # the hook really ran inside the execution
    assert svc.broker.calls.get("market_order", 0) == 0, "an order was sent after the pause"
    assert not out.ok and "paused" in out.message.lower()
    assert inner.positions() == []
    assert svc.store.proposals.get(props[0].id).state is ProposalState.FAILED


async def test_pause_between_retries_blocks_the_resend(cfg, bars, tmp_path):
    """A requote is retried with a fresh price; a pause arriving meanwhile must stop the resend."""
    svc, inner = await _svc(cfg, bars, tmp_path)
    _, props = await svc.propose(SYMBOL)

    def requote_then_pause():
        svc.pause(k.TRADER, "stop now")
        raise RequoteError("requote", 10004)

    svc.broker.hooks["market_order"] = requote_then_pause
    out = await svc.approve(props[0].id, k.TRADER)
    assert svc.broker.calls.get("market_order", 0) == 0  # the hook raised before the real call counted
    assert inner.positions() == [], "the requoted order was resent after the pause"
    assert not out.ok


async def test_emergency_during_an_in_flight_order_closes_the_new_position(cfg, bars, tmp_path):
    """Emergency = block entries, then close every range scalp. An order already at the broker when
    the emergency starts is not yet registered; it must not survive the emergency open."""
    svc, inner = await _svc(cfg, bars, tmp_path)
    _, props = await svc.propose(SYMBOL)
    approval, release = await k.approve_held_at_broker(svc, props[0].id)
    emergency = asyncio.create_task(svc.emergency(k.TRADER))
    await asyncio.sleep(0.05)
    release.set()
    out = await approval
    em = await emergency
    assert out.ok  # the order was already sent: it is recorded, not lost
    assert inner.positions() == [], "a position opened during the emergency stop is still open"
    assert svc.store.closed.get(out.ticket) is not None
    assert em.ok, em.message
    assert svc.notifier.entries_blocked()


async def test_proposal_expiry_is_human_time_on_an_accelerated_paper_replay(cfg, bars, tmp_path):
    """`moneybot run` on paper replays at `broker.paper.speed` (60x by default) with the replay clock
    as the service clock. A 120 s offer must give the trader 120 real seconds, not 2."""
    from core.brokers.paper.feed import AcceleratedClock

    wall = FixedClock(1_800_000_000.0)
    speed = 60.0
    clock = AcceleratedClock(float(bars["time"][START]), speed=speed, wall=wall)
    svc, _, _ = await k.paper_service(cfg, tmp_path, clock, wrap=None)
    _, props = await svc.propose(SYMBOL)
    _, late = await svc.propose(SYMBOL)
    expiry = cfg.execution.proposal_expiry_seconds
    wall.advance(10)  # the trader reads the card for 10 s (10 minutes of replay)
    out = await svc.approve(props[0].id, k.TRADER)
    assert out.state is not ProposalState.EXPIRED, out.message
    wall.advance(expiry)  # a real 120 s later the offer has lapsed
    out = await svc.approve(late[0].id, k.TRADER)
    assert out.state is ProposalState.EXPIRED
    assert svc.store.proposals.get(late[0].id).expires_at - late[0].created_at == pytest.approx(expiry * speed)


async def test_concurrent_approvals_on_one_range_respect_the_reentry_cap(bars, tmp_path):
    """The re-entry cap counts open trades on the range, but an approval still on its way to the broker
    was invisible to it: two quick taps on two proposals for the same range both went through."""
    c = k.config({"exits": {"reentry_cooldown_minutes": 0, "max_reentries_per_range": 0}})
    svc, inner = await _svc(c, bars, tmp_path)
    _, a = await svc.propose(SYMBOL)
    _, b = await svc.propose(SYMBOL)
    assert a[0].analysis.range == b[0].analysis.range
    outs = await asyncio.gather(svc.approve(a[0].id, k.TRADER), svc.approve(b[0].id, k.TRADER))
    assert sum(o.ok for o in outs) == 1, [o.message for o in outs]
    assert len(inner.positions()) == 1
    refused = next(o for o in outs if not o.ok)
    assert "range" in refused.message


async def test_emergency_while_the_monitor_is_closing_a_trade_does_not_cry_manual_close(cfg, bars, tmp_path):
    """If the monitor's exit for a trade is in flight, /close and /emergency were told "already in
    flight" and reported the ticket as NOT closed (asking for a manual close in MetaTrader) although
    the in-flight exit closed it a moment later."""
    svc, inner = await _svc(cfg, bars, tmp_path)
    (ticket,) = await k.open_trades(svc, SYMBOL)
    entered, release = threading.Event(), threading.Event()

    def hold():
        entered.set()
        release.wait(10)

    svc.broker.hooks["close_position"] = hold
    monitor_exit = asyncio.create_task(svc.executor.close(svc.exits.get(ticket), "max_time_in_trade", "too long"))
    while not entered.is_set():
        await asyncio.sleep(0.005)
    emergency = asyncio.create_task(svc.emergency(k.TRADER))
    await asyncio.sleep(0.05)
    release.set()
    await monitor_exit
    em = await emergency
    assert inner.positions() == []
    assert em.ok and "NOT close" not in em.message, em.message
    assert svc.store.closed.get(ticket).exit_reason == "max_time_in_trade"


async def test_a_filled_order_whose_record_failed_is_picked_up_by_the_monitor(cfg, bars, tmp_path, monkeypatch):
    """The order filled, but recording it failed (store error) and the broker was unreachable for the
    look-up after it: the proposal stays `executing`. The monitor skipped any position of an
    `executing` proposal as "being recorded right now" - forever, although nothing was recording it."""
    import sqlite3

    from core.brokers.base import BrokerConnectionError

    svc, inner = await _svc(cfg, bars, tmp_path)
    _, props = await svc.propose(SYMBOL)
    real = svc.store.record_open
    calls = {"n": 0}

    def fail_once(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 1:
            raise sqlite3.OperationalError("disk I/O error")
        return real(*a, **kw)

    monkeypatch.setattr(svc.store, "record_open", fail_once)
    svc.broker.fail("positions", BrokerConnectionError("IPC timeout", -10005),
                    BrokerConnectionError("IPC timeout", -10005))
    out = await svc.approve(props[0].id, k.TRADER)
    assert not out.ok and out.state is ProposalState.EXECUTING
    (pos,) = inner.positions()
    assert not svc.range_scalp_tickets()
    for _ in range(2):
        await svc.monitor.run_cycle()
    assert pos.ticket in svc.range_scalp_tickets(), "the filled position is not monitored"
    p = svc.store.proposals.get(props[0].id)
    assert p.state is ProposalState.EXECUTED and p.ticket == pos.ticket
    assert svc.broker.calls.get("market_order", 0) == 1


async def test_emergency_also_closes_our_positions_the_monitor_has_not_adopted_yet(cfg, bars, tmp_path):
    """An order whose confirmation was lost (timeout) can land at the broker after its approval gave up;
    the monitor adopts it on its next cycle, up to `interval_seconds` (300 s) later. An emergency in
    between must still close every position carrying our magic number."""
    from core.brokers.base import OrderRequest
    from core.brokers.tags import order_comment

    svc, inner = await _svc(cfg, bars, tmp_path)
    (known,) = await k.open_trades(svc, SYMBOL)
    tick = inner.tick(SYMBOL)
    late = inner.market_order(OrderRequest(
        symbol=SYMBOL, side="buy", volume=0.01, sl=round(tick.bid - 5, 2), tp=round(tick.bid + 10, 2),
        price=tick.ask, magic=cfg.execution.magic_number, comment=order_comment("lostconfirm01", "bb_fade")))
    em = await svc.emergency(k.TRADER)
    assert inner.positions() == [], em.message
    assert em.ok and "2 of 2" in em.message
    assert svc.store.closed.get(late.position) is not None and svc.store.closed.get(known) is not None


async def test_an_approval_accepted_in_time_is_not_expired_while_it_is_being_priced(cfg, bars, tmp_path):
    """The expiry check passed at the tap, then the engine awaits the broker for a price; a monitor
    cycle expiring due proposals meanwhile (every second when tick-driven) used to expire the
    APPROVED proposal too, so an in-time approval ended as "Already handled... expired"."""
    svc, inner = await _svc(cfg, bars, tmp_path)
    _, props = await svc.propose(SYMBOL)
    p = props[0]
    svc.broker.hooks["tick"] = lambda: svc.store.proposals.expire_due(p.expires_at + 0.5)
    out = await svc.approve(p.id, k.TRADER)
    assert svc.broker.calls.get("tick", 0) >= 1
    assert out.ok and out.state is ProposalState.EXECUTED, out.message
    assert len(inner.positions()) == 1
