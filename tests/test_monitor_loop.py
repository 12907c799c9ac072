"""The monitor: once-per-symbol fetches, isolation of failures, the crash-proof loop with its heartbeat,
broker closes journalled from deals, connection loss/restore, and auto-disable that persists."""
from __future__ import annotations

import asyncio

import lifecycle_helpers as k
import pytest

import core.exits.monitor as monitor_mod
from core.brokers.base import BrokerConnectionError
from core.domain.clock import FixedClock
from core.domain.models import Direction

SYMBOLS = ("XAUUSDc", "BTCUSDc")


@pytest.fixture(scope="module")
def cfg():
    return k.config()


async def _svc(cfg, tmp_path, symbols=SYMBOLS, start=None, direction=Direction.LONG, store_name="store.sqlite"):
    t = start if start is not None else k.common_time(cfg, symbols)
    clock = FixedClock(t)
    inner = k.paper_broker(cfg, tmp_path / "paper.sqlite", clock, symbols=symbols)
    inner.connect()
    broker = k.FlakyBroker(inner)
    svc = k.service(cfg, tmp_path, clock, broker=broker, analyser=k.LiveAnalyser(inner, clock, direction),
                    store_name=store_name)
    await svc.start(monitor=False)
    return svc


async def test_one_tick_and_one_candle_fetch_per_symbol_per_cycle(cfg, tmp_path):
    c = k.config({"exits": {"reentry_cooldown_minutes": 0, "max_reentries_per_range": 100}})
    svc = await _svc(c, tmp_path)
    await k.open_trades(svc, "XAUUSDc", 4)
    await k.open_trades(svc, "BTCUSDc", 3)
    svc.broker.calls.clear()
    rep = await svc.monitor.run_cycle()
    assert rep.trades == 7 and rep.symbols == 2 and not rep.errors
    assert svc.broker.calls["tick"] == 2 and svc.broker.calls["candles"] == 2
    assert svc.broker.calls["positions"] == 1
    assert svc.monitor.heartbeat == svc.clock.now()


async def test_an_exception_in_one_trade_does_not_blind_the_others(cfg, tmp_path, monkeypatch):
    svc = await _svc(cfg, tmp_path)
    bad = (await k.open_trades(svc, "XAUUSDc"))[0]
    good = (await k.open_trades(svc, "BTCUSDc"))[0]
    real = monitor_mod.check_early_exit_conditions
    seen = []

    def flaky(trade, *a, **kw):
        seen.append(trade.ticket)
        if trade.ticket == bad:
            raise ZeroDivisionError("corrupt trade")
        return real(trade, *a, **kw)

    monkeypatch.setattr(monitor_mod, "check_early_exit_conditions", flaky)
    rep = await svc.monitor.run_cycle()
    assert good in seen and any("corrupt trade" in e for e in rep.errors)
    assert svc.store.errors.recent(5, "trade_evaluation_failed")


async def test_a_crashing_cycle_is_reported_critical_and_the_loop_goes_on(tmp_path, monkeypatch):
    cfg = k.config({"monitor": {"interval_seconds": 0.05}})
    svc = await _svc(cfg, tmp_path)
    real = svc.monitor.run_cycle
    calls = {"n": 0}

    async def sometimes_crash():
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return await real()

    monkeypatch.setattr(svc.monitor, "run_cycle", sometimes_crash)
    svc.monitor.start()
    for _ in range(400):
        await asyncio.sleep(0.01)
        if svc.monitor.cycles >= 2:
            break
    assert svc.monitor.running and svc.monitor.cycles >= 2
    ev = svc.store.errors.recent(5, "monitoring_loop_crashed")
    assert ev and ev[0].severity == "critical" and "boom" in ev[0].message
    assert svc.health().monitor_running
    await svc.stop()
    assert not svc.monitor.running


async def test_sl_hit_at_the_broker_is_journalled_from_the_deal_history(cfg, tmp_path):
    svc = await _svc(cfg, tmp_path, symbols=("XAUUSDc",), start=float(k.m5(cfg)["time"][30000]))
    (ticket,) = await k.open_trades(svc, "XAUUSDc")
    for _ in range(400):  # the replay moves until the broker-side SL or TP closes it
        svc.broker.step()
        if not svc.broker.inner.positions():
            break
    # no monitor cycle ran meanwhile: the next one must find the close and journal it from the deals
    rep = await svc.monitor.run_cycle()
    assert rep.broker_closes == 1 and ticket not in svc.range_scalp_tickets()
    ct = svc.store.closed.get(ticket)
    out_deals = [d for d in svc.broker.history_deals(position_id=ticket) if d.entry == "out"]
    assert ct.exit_price == pytest.approx(out_deals[-1].price)
    assert ct.exit_reason in ("stop_loss", "take_profit") and out_deals[-1].reason in ("sl", "tp")
    assert ct.exit_time == out_deals[-1].time
    assert [e.event for e in svc.store.journal.for_ticket(ticket)] == ["opened", "closed"]


async def test_connection_lost_then_restored_resumes_monitoring(cfg, tmp_path):
    svc = await _svc(cfg, tmp_path, symbols=("XAUUSDc",), start=float(k.m5(cfg)["time"][30000]))
    (ticket,) = await k.open_trades(svc, "XAUUSDc")
    svc.broker.down = True
    svc.broker.connect_failures = 10
    svc.broker.calls.clear()
    rep = await svc.monitor.run_cycle()
    assert not rep.connected and not svc.monitor.connected
    assert svc.broker.calls["connect"] == cfg.error_handling["mt5_connection_lost"].max_retries
    assert any(a.kind == "connection_lost" for a in svc.notifier.sent)
    assert svc.store.errors.recent(5, "mt5_connection_lost")[0].severity == "critical"
    assert not svc.health().ok and "broker not connected" in svc.health().problems
    assert ticket in svc.range_scalp_tickets()  # still monitored, nothing dropped
    svc.broker.connect_failures = 0
    svc.broker.step()
    rep = await svc.monitor.run_cycle()
    assert rep.connected and svc.monitor.connected and rep.trades == 1 and rep.symbols == 1
    assert any(a.kind == "connection_restored" for a in svc.notifier.sent)
    assert svc.health().broker_connected


async def test_auto_disable_at_the_threshold_persists_across_a_restart(cfg, tmp_path):
    svc = await _svc(cfg, tmp_path, symbols=("XAUUSDc",), start=float(k.m5(cfg)["time"][30000]))
    await k.open_trades(svc, "XAUUSDc")
    limit = cfg.kill_switch.max_critical_errors_per_hour
    svc.broker.down = True
    svc.broker.connect_failures = 10**6
    for i in range(limit):
        assert not svc.store.kill_switch.get().auto_disabled, f"disabled too early, after {i} critical errors"
        await svc.monitor.run_cycle()
    assert svc.store.kill_switch.get().auto_disabled
    assert any(a.kind == "auto_disabled" for a in svc.alerts.sent)
    # the bot restarts: entries stay off until a human resumes
    svc.broker.down = False
    svc.broker.connect_failures = 0
    svc.store.close()
    svc.broker.inner.close()
    again = await _svc(cfg, tmp_path, symbols=("XAUUSDc",), start=float(k.m5(cfg)["time"][30000]))
    assert again.health().auto_disabled
    _, props = await again.propose("XAUUSDc")
    out = await again.approve(props[0].id, k.TRADER)
    assert not out.ok and "auto-disabled" in out.message
    assert len(again.broker.positions()) == 1  # only the trade from before
    again.resume(k.TRADER)
    out = await again.approve(props[0].id, k.TRADER)
    assert out.ok


def test_interval_comes_from_config():
    slow = k.config()
    assert slow.monitor.interval_seconds == 300
    fast = k.config({"monitor": {"tick_driven": True}})
    assert monitor_mod.Monitor(fast, None, None, None, None, None).interval == monitor_mod.TICK_DRIVEN_INTERVAL
    assert monitor_mod.Monitor(slow, None, None, None, None, None).interval == 300
    assert BrokerConnectionError.retryable


async def test_exits_run_critical_first_across_all_trades(tmp_path, monkeypatch):
    from core.domain.models import ExitPriority, ExitSignal

    cfg = k.config({"exits": {"reentry_cooldown_minutes": 0, "max_reentries_per_range": 100}})
    svc = await _svc(cfg, tmp_path)
    low_first = await k.open_trades(svc, "XAUUSDc", 3)
    crit = (await k.open_trades(svc, "BTCUSDc"))[0]
    plan = {low_first[0]: ExitPriority.LOW, low_first[1]: ExitPriority.MEDIUM, low_first[2]: ExitPriority.HIGH,
            crit: ExitPriority.CRITICAL}

    def signals(trade, *a, **kw):  # the rules are tested elsewhere; here only the processing order matters
        return [ExitSignal(ticket=trade.ticket, priority=plan[trade.ticket], kind=f"test_{plan[trade.ticket].value}",
                           reason="test")]

    monkeypatch.setattr(monitor_mod, "check_early_exit_conditions", signals)
    rep = await svc.monitor.run_cycle()
    assert rep.exits == 4 and not rep.errors
    closed_order = sorted(svc.store.closed.recent(10), key=lambda c: min(c.metadata["exit_deal_tickets"]))
    assert [c.ticket for c in closed_order] == [crit, low_first[2], low_first[1], low_first[0]]
    assert [c.exit_reason for c in closed_order] == ["test_critical", "test_high", "test_medium", "test_low"]


async def test_exits_keep_running_while_entries_are_paused(cfg, tmp_path):
    c = k.config({"exits": {"max_minutes_in_trade": 5}})
    svc = await _svc(c, tmp_path, symbols=("XAUUSDc",), start=float(k.m5(cfg)["time"][30000]))
    (ticket,) = await k.open_trades(svc, "XAUUSDc")
    svc.pause(k.TRADER, "news")
    svc.broker.step()
    svc.broker.step()
    rep = await svc.monitor.run_cycle()
    assert rep.exits == 1 and svc.store.closed.get(ticket).exit_reason == "max_time_in_trade"
    assert svc.health().entries_blocked
