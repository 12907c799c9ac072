"""TradingService, the facade of docs/architecture.md: roles, symbols, status, trades, metrics,
config, health, alert sinks."""
from __future__ import annotations

import asyncio

import lifecycle_helpers as k
import pytest

from core.domain.exceptions import NotAuthorizedError, UnknownSymbolError
from core.service import HealthReport, TradeStatus
from core.store.metrics import MetricsReport

SYMBOL = "XAUUSDc"


@pytest.fixture(scope="module")
def cfg():
    return k.config()


@pytest.fixture
async def svc(cfg, tmp_path):
    s, _, _ = await k.paper_service(cfg, tmp_path, float(k.m5(cfg)["time"][30000]), wrap=None)
    yield s
    await s.stop()
    s.store.close()


@pytest.mark.parametrize("action", ["approve", "reject", "close", "pause", "resume", "emergency", "propose"])
def test_roles_traders_act_viewers_read_strangers_nothing(svc, action):
    svc.authorize(k.TRADER, action)
    with pytest.raises(NotAuthorizedError):
        svc.authorize(k.VIEWER, action)
    svc.authorize(k.VIEWER, "status")
    svc.authorize(str(k.VIEWER), "health")  # ids may arrive as strings from chat payloads
    with pytest.raises(NotAuthorizedError):
        svc.authorize(k.STRANGER, "status")


async def test_unknown_symbol_gets_suggestions(svc):
    with pytest.raises(UnknownSymbolError) as e:
        await svc.analyse("XAUUSD")
    assert "XAUUSDc" in e.value.message
    a = await svc.analyse("xauusdc")
    assert a.symbol == SYMBOL


async def test_status_trades_close_and_metrics(svc):
    (ticket,) = await k.open_trades(svc, SYMBOL)
    for _ in range(3):
        svc.broker.step()
        await svc.monitor.run_cycle()
    rows = svc.status()
    assert len(rows) == 1 and isinstance(rows[0], TradeStatus)
    r = rows[0]
    assert r.trade.ticket == ticket and r.minutes_in_trade == pytest.approx(15.0)
    assert r.pnl_r == pytest.approx(r.trade.r_multiple(r.current_price)) and r.breakeven_moved is False
    with pytest.raises(NotAuthorizedError):
        await svc.close_trade(ticket, k.VIEWER)
    missing = await svc.close_trade(123, k.TRADER)
    assert not missing.ok and "No open range scalp" in missing.message
    out = await svc.close_trade(ticket, k.TRADER)
    assert out.ok and f"Closed ticket {ticket}" in out.message
    assert svc.status() == []
    (ct,) = svc.recent_trades(5)
    assert ct.ticket == ticket and ct.exit_reason == "manual_close"
    m = svc.metrics(days=7)
    assert isinstance(m, MetricsReport) and m.trades == 1
    assert svc.metrics(days=None).trades == 1
    # a window's equity starts at the balance the account had when the window began
    start = svc.cfg.broker.paper.start_balance
    assert m.starting_balance == pytest.approx(start)  # nothing closed before the last 7 days
    svc.clock.advance(8 * 86400)
    later = svc.metrics(days=7)
    assert later.trades == 0 and later.starting_balance == pytest.approx(start + ct.pnl - abs(ct.commission))


def test_effective_config_and_version(svc, cfg):
    btc = svc.effective_config("btcusdc")
    assert btc["symbol"] == "BTCUSDc" and btc["range_invalidation"]["candles_outside_range"] == 3
    assert btc["config_version"] == cfg.short_version and svc.config_version == cfg.version
    assert svc.effective_config(None)["execution"]["lot_size"] == 0.01
    with pytest.raises(UnknownSymbolError):
        svc.effective_config("DOGE")


async def test_health_reports_monitor_broker_errors_and_kill_switch(svc):
    h = svc.health()
    assert isinstance(h, HealthReport) and not h.monitor_running and "monitor not running" in h.problems
    svc.monitor.start()
    for _ in range(300):
        await asyncio.sleep(0.01)
        if svc.monitor.cycles:
            break
    h = svc.health()
    assert h.ok and h.monitor_running and h.broker_connected and h.monitor_heartbeat == svc.clock.now()
    assert h.recovery is not None and h.recovery.broker_ok
    svc.pause(k.TRADER, "lunch")
    h = svc.health()
    assert h.entries_blocked and "paused" in h.entries_blocked.lower()


async def test_chat_sinks_receive_alerts(svc):
    got = k.collect_alerts(svc, "console")
    (ticket,) = await k.open_trades(svc, SYMBOL)
    await svc.close_trade(ticket, k.TRADER)
    for _ in range(200):
        await asyncio.sleep(0.01)
        if got:
            break
    assert [a.kind for a in got] == ["exit_executed"] and got[0].ticket == ticket
    assert got[0].trade is not None and got[0].exit_price  # enough for the sink to draw its chart


async def test_propose_with_a_user_requires_a_trader(svc):
    with pytest.raises(NotAuthorizedError):
        await svc.propose(SYMBOL, user_id=k.VIEWER)
    _, props = await svc.propose(SYMBOL, user_id=k.TRADER)
    assert props and all(len(p.id) <= 16 for p in props)
