"""Review of the monitor's failure isolation: a cosmetic write or one symbol's bad feed must not stop the
exits of every trade in the cycle (real-data paper broker, two symbols)."""
from __future__ import annotations

import sqlite3

import lifecycle_helpers as k
import pytest

from core.domain.clock import FixedClock
from core.domain.models import Direction

SYMBOLS = ("XAUUSDc", "BTCUSDc")
# a quiet stretch on both symbols: no SL/TP within the few bars each test steps through
NEAR = 1_746_003_600.0  # 2025-04-30 09:00 UTC


@pytest.fixture(scope="module")
def cfg():
    return k.config({"exits": {"max_minutes_in_trade": 5}})


async def _svc(cfg, tmp_path):
    clock = FixedClock(k.common_time(cfg, SYMBOLS, near=NEAR))
    inner = k.paper_broker(cfg, tmp_path / "paper.sqlite", clock, symbols=SYMBOLS)
    inner.connect()
    broker = k.FlakyBroker(inner)
    svc = k.service(cfg, tmp_path, clock, broker=broker, analyser=k.LiveAnalyser(inner, clock, Direction.LONG))
    await svc.start(monitor=False)
    return svc


async def test_a_failing_mfe_save_does_not_cancel_the_cycles_exits(cfg, tmp_path, monkeypatch):
    """MFE/MAE are saved before the exits run; if that write fails (database locked, disk full) the
    trades past their time limit must still be closed in this cycle."""
    svc = await _svc(cfg, tmp_path)
    (ticket,) = await k.open_trades(svc, "XAUUSDc")
    # a 1-point risk makes any real move a large R, so the cycle certainly has an MFE/MAE to save
    svc.exits.update_trade_state(ticket, lambda t: {"initial_sl": t.entry_price - 0.01})
    real = svc.exits.update_many
    tried = []

    def locked(updates, journal=None):
        if any({"mfe_r", "mae_r"} & set(u if isinstance(u, dict) else {}) for u in updates.values()):
            tried.append(list(updates))
            raise sqlite3.OperationalError("database is locked")
        return real(updates, journal)

    monkeypatch.setattr(svc.exits, "update_many", locked)
    svc.broker.step()
    svc.broker.step()
    rep = await svc.monitor.run_cycle()
    assert tried, "the cycle never tried to save an excursion"
    assert rep.exits == 1, rep.errors
    assert svc.store.closed.get(ticket).exit_reason == "max_time_in_trade"
    assert any("database is locked" in e for e in rep.errors)


async def test_an_unexpected_error_in_one_symbols_feed_does_not_blind_the_other_symbols(cfg, tmp_path):
    """Only BrokerError was isolated per symbol; anything else (a bridge returning garbage) aborted the
    whole fetch, so no trade on any symbol was judged or closed."""
    svc = await _svc(cfg, tmp_path)
    (ticket,) = await k.open_trades(svc, "XAUUSDc")
    await k.open_trades(svc, "BTCUSDc")
    svc.broker.step()
    svc.broker.step()
    svc.broker.fail("candles", ValueError("bridge returned a malformed rates array"))  # BTCUSDc is fetched first
    rep = await svc.monitor.run_cycle()
    assert any("malformed" in e for e in rep.errors)
    closed = svc.store.closed.get(ticket)
    assert closed is not None and closed.exit_reason == "max_time_in_trade"
    assert rep.symbols == 1


async def test_a_history_read_failing_during_startup_recovery_does_not_stop_the_bot(tmp_path):
    """Recovery journals trades closed while the bot was down from the deal history. If that read
    fails for one trade, start() must still finish (else nothing at all is monitored) and a later
    monitor cycle journals the close from the real deals."""
    from core.brokers.base import BrokerConnectionError

    cfg = k.config()
    t0 = float(k.m5(cfg)["time"][30000])
    svc, _, inner = await k.paper_service(cfg, tmp_path, t0)
    (gone,) = await k.open_trades(svc, "XAUUSDc")
    svc.store.close()
    for _ in range(500):  # the replay runs on while the bot is down, until the broker's SL/TP closes it
        inner.step()
        if not inner.positions():
            break
    assert not inner.positions()
    inner.close()

    svc2, _, inner2 = await k.paper_service(cfg, tmp_path, t0, connect=False, start=False)
    svc2.broker.fail("history_deals", BrokerConnectionError("IPC timeout", -10005))
    rep = await svc2.start(monitor=False)  # must not raise
    assert svc2.ready and gone in rep.unresolved
    assert gone in svc2.range_scalp_tickets()  # still watched until its close is journalled
    await svc2.monitor.run_cycle()
    closed = svc2.store.closed.get(gone)
    deal = [d for d in inner2.history_deals(position_id=gone) if d.entry == "out"][-1]
    assert closed is not None and closed.exit_price == pytest.approx(deal.price)
    assert not svc2.range_scalp_tickets()


async def test_our_exit_keeps_its_reason_when_the_deals_show_up_a_cycle_late(cfg, tmp_path):
    """MT5 can list a close's deals a moment after the order returns. The monitor then journals the
    vanished position from the deals on its next cycle; the reason must still be the exit we sent
    (it is in the closing deal's comment), not 'closed_outside_bot'."""
    from core.brokers.base import BrokerError

    svc = await _svc(cfg, tmp_path)
    (ticket,) = await k.open_trades(svc, "XAUUSDc")
    svc.broker.step()
    svc.broker.step()
    svc.broker.fail("history_deals", BrokerError("history not synchronised yet", None))
    rep = await svc.monitor.run_cycle()
    assert rep.exits == 1 and svc.store.closed.get(ticket) is None  # closed, journal pending
    await svc.monitor.run_cycle()
    closed = svc.store.closed.get(ticket)
    assert closed is not None and closed.exit_reason == "max_time_in_trade"


async def test_orphans_with_a_per_symbol_magic_number_are_found_by_monitor_and_recovery(tmp_path):
    """`execution.magic_number` can be overridden per symbol. The monitor only asked the broker for the
    magics of its open trades (or the global one) and recovery for those plus the global one, so a
    late-landing BTCUSDc order with BTCUSDc's own magic was never adopted while a XAUUSDc trade was open."""
    from core.brokers.base import OrderRequest
    from core.brokers.tags import order_comment

    c = k.config({"symbol_overrides": {"BTCUSDc": {"execution": {"magic_number": 4242}}}})
    svc = await _svc(c, tmp_path)
    await k.open_trades(svc, "XAUUSDc")
    inner = svc.broker.inner
    tick = inner.tick("BTCUSDc")
    res = inner.market_order(OrderRequest(  # an order whose confirmation was lost lands at the broker
        symbol="BTCUSDc", side="buy", volume=0.01, sl=round(tick.bid - 800, 2), tp=round(tick.bid + 1600, 2),
        price=tick.ask, deviation=1000, magic=4242, comment=order_comment("lostconfirm01", "bb_fade")))
    await svc.monitor.run_cycle()
    assert res.position in svc.range_scalp_tickets(), "the late order with BTCUSDc's magic is unmonitored"

    # the same at start-up: a fresh store that never saw it adopts it during recovery
    svc2 = k.service(c, tmp_path, svc.clock, broker=k.FlakyBroker(inner), analyser=None, store_name="other.sqlite")
    rep = await svc2.start(monitor=False)
    assert res.position in rep.orphans_adopted


async def test_a_real_short_is_journalled_with_short_signs(tmp_path):
    """A short on real XAUUSDc bars, run by the monitor until the broker's SL or TP closes it: R, P&L
    (contract size 100), MFE and MAE all carry the short's signs, and the breakeven (if it moved)
    sits below the entry."""
    cfg = k.config()
    t0 = float(k.m5(cfg)["time"][30000])
    clock = FixedClock(t0)
    inner = k.paper_broker(cfg, tmp_path / "paper.sqlite", clock, slippage_points=0)
    inner.connect()
    svc = k.service(cfg, tmp_path, clock, broker=k.FlakyBroker(inner),
                    analyser=k.LiveAnalyser(inner, clock, Direction.SHORT, risk_atr=1.0))
    await svc.start(monitor=False)
    (ticket,) = await k.open_trades(svc, "XAUUSDc")
    trade = svc.exits.get(ticket)
    assert trade.sl > trade.entry_price > trade.tp
    be_seen = None
    for _ in range(400):
        inner.step()
        await svc.monitor.run_cycle()
        t = svc.exits.get(ticket)
        if t is not None and t.breakeven_moved:
            be_seen = t.sl
        if svc.store.closed.get(ticket) is not None:
            break
    c = svc.store.closed.get(ticket)
    assert c is not None, "the short never closed"
    spec = cfg.symbols["XAUUSDc"]
    assert c.r_multiple == pytest.approx((c.entry_price - c.exit_price) / (c.initial_sl - c.entry_price))
    assert c.pnl == pytest.approx((c.entry_price - c.exit_price) * c.volume * spec.contract_size, abs=0.011)
    assert c.mfe_r >= max(c.r_multiple, 0.0) and c.mae_r <= min(c.r_multiple, 0.0)
    if be_seen is not None:
        assert be_seen <= c.entry_price
    deal = [d for d in inner.history_deals(position_id=ticket) if d.entry == "out"][-1]
    assert c.exit_price == pytest.approx(deal.price)


async def test_an_exit_is_sent_even_when_the_exiting_state_cannot_be_saved(cfg, tmp_path, monkeypatch):
    """The executor marks a trade 'exiting' in the store before it sends the close. If that write fails
    (database locked, disk full) the close itself was never sent, on every cycle: the position stayed
    open past its exit signal. The close matters more than the bookkeeping."""
    svc = await _svc(cfg, tmp_path)
    (ticket,) = await k.open_trades(svc, "XAUUSDc")
    real = svc.exits.update_trade_state

    def locked(t, updates, journal=None):
        if isinstance(updates, dict) and updates.get("exit_manager_state") == "exiting":
            raise sqlite3.OperationalError("database is locked")
        return real(t, updates, journal)

    monkeypatch.setattr(svc.exits, "update_trade_state", locked)
    svc.broker.step()
    svc.broker.step()
    await svc.monitor.run_cycle()
    assert svc.broker.inner.positions() == [], "the exit was never sent"
    assert svc.store.closed.get(ticket).exit_reason == "max_time_in_trade"


async def test_exit_failed_alert_goes_out_even_if_the_store_cannot_record_it(cfg, tmp_path, monkeypatch):
    """After the configured attempts the trader must be told to close by hand; that alert came after
    the 'exit_failed' state write, so a failing store swallowed the one alert that matters most."""
    from core.brokers.base import RequoteError

    svc = await _svc(cfg, tmp_path)
    (ticket,) = await k.open_trades(svc, "XAUUSDc")
    real = svc.exits.update_trade_state

    def locked(t, updates, journal=None):
        if isinstance(updates, dict) and updates.get("exit_manager_state") == "exit_failed":
            raise sqlite3.OperationalError("disk I/O error")
        return real(t, updates, journal)

    monkeypatch.setattr(svc.exits, "update_trade_state", locked)
    svc.broker.fail("close_position", *[RequoteError("requote", 10004)] * 3)
    out = await svc.close_trade(ticket, k.TRADER)
    assert not out.ok
    alerts = [a for a in svc.notifier.sent if a.kind == "exit_failed"]
    assert len(alerts) == 1 and "close it manually" in alerts[0].text


async def test_a_breakeven_stop_synced_from_the_broker_is_journalled_as_breakeven(tmp_path):
    """A breakeven sent to the broker but not saved (crash, or a failed save) is taken from the broker on
    the next reconciliation; when that stop closes the trade at ~0 R the journal must say
    'breakeven_stop', not 'stop_loss' (real XAUUSDc bars that go +1.2 R and come back to the entry)."""
    cfg = k.config()
    bars = k.m5(cfg)
    setup = k.find_breakeven_then_exit(bars, 30000, risk=3.0)
    clock = FixedClock(float(bars["time"][setup.index]))
    svc = k.service(cfg, tmp_path, clock, analyser=lambda s: k.analysis_at(s, bars, clock.now(), setup))
    await svc.start(monitor=False)
    _, props = await svc.propose("XAUUSDc")
    out = await svc.approve(props[0].id, k.TRADER)
    assert out.ok
    inner = svc.broker
    trade = svc.exits.get(out.ticket)
    for _ in range(40):
        inner.step()
        if inner.tick("XAUUSDc").bid >= trade.entry_price + 1.2 * trade.initial_risk:
            break
    inner.modify_sltp(out.ticket, trade.entry_price, trade.tp)  # sent, then the save is lost
    for _ in range(60):
        await svc.monitor.run_cycle()
        if svc.store.closed.get(out.ticket) is not None:
            break
        inner.step()
    c = svc.store.closed.get(out.ticket)
    assert c is not None and abs(c.r_multiple) < 0.1
    assert c.exit_reason == "breakeven_stop"
