"""RangeScalpingExitManager: concurrency-safe registry (no lost update from asyncio + threads),
persistence with versions, priority order, re-entry rules."""
from __future__ import annotations

import asyncio
import threading

import lifecycle_helpers as k
import pytest

from core.domain.clock import FixedClock
from core.domain.models import ActiveTrade, ClosedTrade, Direction, ExitPriority, ExitSignal
from core.exits.manager import RangeScalpingExitManager, TradeNotRegistered
from core.store import Store

T0 = 1_750_000_000.0


def _trade(ticket: int, rng=None, symbol="XAUUSDc", entry_time=T0) -> ActiveTrade:
    return ActiveTrade(ticket=ticket, symbol=symbol, strategy="bb_fade", direction=Direction.LONG, entry_price=100.0,
                       sl=99.0, tp=102.0, initial_sl=99.0, volume=0.01, entry_time=entry_time, range_data=rng,
                       metadata={"n": 0})


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "store.sqlite", clock=FixedClock(T0))
    yield s
    s.close()


def test_register_update_unregister_persist_with_versions(store):
    mgr = RangeScalpingExitManager(store=store, clock=store.clock)
    mgr.register_trade(_trade(1))
    assert store.trades.get(1).version == 0
    t = mgr.update_trade_state(1, {"breakeven_moved": True, "sl": 100.0}, journal=("sl_moved", {"to": 100.0}))
    assert t.version == 1 and store.trades.get(1).sl == 100.0 and store.trades.get(1).version == 1
    assert [e.event for e in store.journal.for_ticket(1)] == ["sl_moved"]
    assert mgr.range_scalp_tickets() == {1}
    assert mgr.unregister_trade(1) and store.trades.get(1) is None and mgr.range_scalp_tickets() == frozenset()
    with pytest.raises(TradeNotRegistered):
        mgr.update_trade_state(1, {"sl": 1.0})
    assert not mgr.unregister_trade(1)


def test_a_failed_store_write_leaves_memory_unchanged(store):
    mgr = RangeScalpingExitManager(store=store, clock=store.clock)
    mgr.register_trade(_trade(1))
    store.trades.update(1, lambda t: t.model_copy(update={"tp": 105.0}))  # someone wrote behind our back
    with pytest.raises(Exception):  # noqa: B017 - the store's stale-version error
        mgr.update_trade_state(1, {"sl": 99.5})
    assert mgr.get(1).sl == 99.0  # memory never runs ahead of the store


async def test_no_lost_update_under_asyncio_tasks_and_worker_threads(store):
    mgr = RangeScalpingExitManager(store=store, clock=store.clock)
    for t in (1, 2, 3):
        mgr.register_trade(_trade(t))
    per_worker = 40

    def bump(trade):  # read-modify-write: loses increments unless serialised
        return {"metadata": {**trade.metadata, "n": trade.metadata["n"] + 1}, "mfe_r": trade.mfe_r + 0.01}

    def thread_worker(ticket):
        for _ in range(per_worker):
            mgr.update_trade_state(ticket, bump)

    async def task_worker(ticket):
        for _ in range(per_worker):
            await asyncio.to_thread(mgr.update_trade_state, ticket, bump)
            mgr.update_trade_state(ticket, bump)

    threads = [threading.Thread(target=thread_worker, args=(t,)) for t in (1, 2, 3) for _ in range(3)]
    for th in threads:
        th.start()
    await asyncio.gather(*[task_worker(t) for t in (1, 2, 3) for _ in range(3)])
    for th in threads:
        th.join()
    expected = 3 * per_worker + 3 * 2 * per_worker
    for t in (1, 2, 3):
        mem, db = mgr.get(t), store.trades.get(t)
        assert mem.metadata["n"] == expected and db.metadata["n"] == expected
        assert mem.version == db.version == expected
        assert mem.mfe_r == pytest.approx(expected * 0.01)


def test_signals_are_ordered_critical_to_low_closes_first():
    mk = lambda t, p, a="close": ExitSignal(ticket=t, priority=p, kind="x", reason="r", action=a)  # noqa: E731
    sigs = [mk(3, ExitPriority.LOW, "move_sl"), mk(2, ExitPriority.MEDIUM), mk(1, ExitPriority.HIGH),
            mk(4, ExitPriority.CRITICAL), mk(5, ExitPriority.LOW)]
    ordered = RangeScalpingExitManager.order_signals(sigs)
    assert [s.priority for s in ordered] == [ExitPriority.CRITICAL, ExitPriority.HIGH, ExitPriority.MEDIUM,
                                            ExitPriority.LOW, ExitPriority.LOW]
    assert [s.ticket for s in ordered[-2:]] == [5, 3]  # a close before a stop move at the same priority


def test_reentry_cooldown_and_cap_per_range():
    bars = k.m5(k.config())[30000:30048]
    rng = k.range_of("XAUUSDc", bars, atr=2.0)
    mgr = RangeScalpingExitManager(clock=FixedClock(T0))
    ok, _ = mgr.check_reentry_allowed("XAUUSDc", rng, T0, cooldown_minutes=30, max_reentries=1)
    assert ok
    mgr.register_trade(_trade(1, rng))
    assert mgr.check_reentry_allowed("XAUUSDc", rng, T0, 30, 1)[0]  # open trade counts, 1 re-entry left
    mgr.unregister_trade(1, exit_time=T0 + 600)
    ok, why = mgr.check_reentry_allowed("XAUUSDc", rng, T0 + 900, 30, 1)
    assert not ok and "25 more minute" in why
    ok, _ = mgr.check_reentry_allowed("XAUUSDc", rng, T0 + 600 + 1800, 30, 1)
    assert ok
    mgr.register_trade(_trade(2, rng, entry_time=T0 + 2400))
    ok, why = mgr.check_reentry_allowed("XAUUSDc", rng, T0 + 9000, 30, 1)
    assert not ok and "limit is 1 re-entry" in why
    # another symbol, or a clearly different range, is not this range
    assert mgr.check_reentry_allowed("EURUSDc", rng, T0 + 9000, 30, 1)[0]
    far = rng.model_copy(update={"range_high": rng.range_high + 100, "range_low": rng.range_low + 100})
    assert mgr.check_reentry_allowed("XAUUSDc", far, T0 + 9000, 30, 1)[0]


def test_reentry_history_survives_a_restart_through_closed_trades():
    bars = k.m5(k.config())[30000:30048]
    rng = k.range_of("XAUUSDc", bars, atr=2.0)
    closed = ClosedTrade(ticket=9, symbol="XAUUSDc", strategy="bb_fade", direction=Direction.LONG, volume=0.01,
                         entry_price=1, exit_price=1, initial_sl=0.5, tp=2, entry_time=T0, exit_time=T0 + 60, pnl=0,
                         r_multiple=0, exit_reason="x",
                         metadata={"range_high": rng.range_high, "range_low": rng.range_low})
    mgr = RangeScalpingExitManager(clock=FixedClock(T0))
    mgr.load([], [closed])
    ok, why = mgr.check_reentry_allowed("XAUUSDc", rng, T0 + 120, 30, 2)
    assert not ok and "re-entry waits 30 minutes" in why


def test_seed_named_methods_delegate_to_the_rules():
    from core.brokers.base import SymbolInfo, Tick

    cfg = k.config()
    tcfg = cfg.for_symbol("XAUUSDc")
    info = SymbolInfo(name="XAUUSDc", digits=2, point=0.01, trade_stops_level=20)
    t = _trade(1)
    mgr = RangeScalpingExitManager()
    assert mgr.calculate_breakeven_stop(t, Tick(time=0, bid=101.5, ask=101.6), tcfg, info) == 100.0
    assert mgr.calculate_breakeven_stop(t, Tick(time=0, bid=100.5, ask=100.6), tcfg, info) is None
    late = T0 + tcfg.exits.max_minutes_in_trade * 60
    sig = mgr.check_early_exit_conditions(t, Tick(time=late, bid=101.5, ask=101.6), k.m5(cfg)[:0], late, tcfg, info)
    assert sig.kind == "max_time_in_trade" and sig.priority is ExitPriority.HIGH
    assert mgr.check_range_invalidation_during_trade(t, k.m5(cfg)[:10], tcfg) == (False, [])
