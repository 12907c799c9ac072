"""Lifecycle scenarios on the MT5 adapter (fake terminal, real XAUUSD M5 bars) on BOTH account models:
open, breakeven, invalidation exit, manual close, crash, recovery; plus the netting refusal on the card and
in the Approve reply, and the trade keyed by the position identifier (issue 14)."""
from __future__ import annotations

import lifecycle_helpers as k
import pytest
from fakes import fake_mt5 as mt5
from mt5_lifecycle_helpers import MODES, NETTING, SYMBOL, MT5World

from core.domain.models import ProposalState


@pytest.fixture(scope="module")
def cfg():
    return k.config()


@pytest.fixture(scope="module")
def bars(cfg):
    return k.m5(cfg, SYMBOL)


def world(cfg, bars, tmp_path, mode, start=30000, shift=0.0, **kw):
    setup = k.find_breakeven_then_exit(bars, start, risk=3.0, spread=0.5)
    box = {}

    def analyser(s):
        a = k.analysis_at(s, bars, box["w"].clock.now(), setup)
        if shift:  # a range far from the price: the trade's range is broken from the first closes
            r = a.range.model_copy(update={"range_high": a.range.range_high + shift,
                                           "range_low": a.range.range_low + shift,
                                           "range_mid": a.range.range_mid + shift})
            a = a.model_copy(update={"range": r})
        return a

    w = box["w"] = MT5World(cfg, tmp_path, bars, setup.index, MODES[mode], analyser=analyser, **kw)
    return w, setup, analyser


async def open_one(w):
    await w.svc.start(monitor=False)
    _, props = await w.svc.propose(SYMBOL)
    out = await w.svc.approve(props[0].id, k.TRADER)
    assert out.ok and out.state is ProposalState.EXECUTED, out.message
    return out


async def run_until_flat(w, max_steps=80):
    reports = []
    for _ in range(max_steps):
        w.step()
        reports.append(await w.svc.monitor.run_cycle())
        if not w.svc.exits.active_trades():
            break
    return reports


def one_position():
    (p,) = mt5.positions_get()
    return p


@pytest.mark.parametrize("mode", ["hedging", "netting"])
async def test_open_breakeven_exit_on_both_account_models(cfg, bars, tmp_path, mode):
    w, setup, _ = world(cfg, bars, tmp_path, mode)
    out = await open_one(w)
    p = one_position()
    assert out.ticket == p.identifier  # the trade is keyed by the identifier, not an order ticket
    reports = await run_until_flat(w)
    assert not w.svc.exits.active_trades()
    assert sum(r.sl_moves for r in reports) == 1
    events = [e.event for e in w.svc.store.journal.for_ticket(out.ticket)]
    assert events == ["opened", "sl_moved", "closed"]
    closed = w.svc.store.closed.get(out.ticket)
    outs = [d for d in mt5.history_deals_get(position=out.ticket) if d.entry in (1, 2)]
    assert closed.pnl == pytest.approx(sum(d.profit for d in outs)) and closed.volume == pytest.approx(0.01)
    assert w.svc.metrics().trades == 1
    h = w.svc.health()
    assert h.account_mode == ("netting" if mode == "netting" else "hedging") and h.account_currency == "USD"
    w.svc.store.close()


@pytest.mark.parametrize("mode", ["hedging", "netting"])
async def test_invalidation_exit_on_both_account_models(cfg, bars, tmp_path, mode):
    w, _, _ = world(cfg, bars, tmp_path, mode, shift=40.0)
    out = await open_one(w)
    reports = await run_until_flat(w, 20)
    kinds = [s.kind for r in reports for s in r.signals]
    assert "range_invalidated" in kinds
    closed = w.svc.store.closed.get(out.ticket)
    assert closed is not None and closed.exit_reason == "range_invalidated" and mt5.positions_get() == ()
    w.svc.store.close()


@pytest.mark.parametrize("mode", ["hedging", "netting"])
async def test_manual_close_on_both_account_models(cfg, bars, tmp_path, mode):
    w, _, _ = world(cfg, bars, tmp_path, mode)
    out = await open_one(w)
    w.step()
    res = await w.svc.close_trade(out.ticket, k.TRADER)
    assert res.ok and mt5.positions_get() == ()
    closed = w.svc.store.closed.get(out.ticket)
    assert closed.exit_reason == "manual_close" and closed.volume == pytest.approx(0.01)
    w.svc.store.close()


@pytest.mark.parametrize("mode", ["hedging", "netting"])
async def test_crash_then_recovery_journals_the_close_on_both_account_models(cfg, bars, tmp_path, mode):
    w, _, analyser = world(cfg, bars, tmp_path, mode)
    out = await open_one(w)
    new_ticket = mt5.fake_reopen(one_position().ticket)  # while down: swap charged by re-opening
    for _ in range(200):  # the broker's SL/TP closes it while the bot is down
        if not mt5.positions_get():
            break
        w.step()
    if mt5.positions_get():  # still open: a human closes it in MetaTrader
        p = one_position()
        close_req = dict(action=mt5.TRADE_ACTION_DEAL, symbol=SYMBOL, volume=p.volume, type=1, position=p.ticket,
                         price=mt5.symbol_info_tick(SYMBOL).bid, deviation=100, magic=0, comment="",
                         type_filling=mt5.ORDER_FILLING_FOK, type_time=0)
        assert mt5.order_send(close_req).retcode == 10009
    assert new_ticket != out.ticket
    svc = w.restart(analyser)
    rec = await svc.start(monitor=False)
    assert rec.broker_ok and rec.closed_while_down == [out.ticket] and not rec.unresolved
    assert svc.store.closed.get(out.ticket) is not None and not svc.exits.active_trades()
    svc.store.close()


@pytest.mark.parametrize("mode", ["hedging", "netting"])
async def test_crash_with_an_open_reopened_position_is_recovered_by_identifier(cfg, bars, tmp_path, mode):
    w, _, analyser = world(cfg, bars, tmp_path, mode)
    out = await open_one(w)
    mt5.fake_reopen(one_position().ticket)
    mt5.fake_rewrite_comment(one_position().ticket, "[swap] rewritten by the broker")
    svc = w.restart(analyser)
    rec = await svc.start(monitor=False)
    assert rec.broker_ok and not rec.orphans_adopted and not rec.closed_while_down  # same trade, not an orphan
    assert [t.ticket for t in svc.exits.active_trades()] == [out.ticket]
    await svc.monitor.run_cycle()
    res = await svc.close_trade(out.ticket, k.TRADER)
    assert res.ok and mt5.positions_get() == ()
    svc.store.close()


async def test_netting_second_approval_is_refused_with_the_reason(cfg, bars, tmp_path):
    """The evidence run: two Approve taps on one symbol of a netting account merged silently into 0.02 lot."""
    w, _, _ = world(cfg, bars, tmp_path, "netting")
    await open_one(w)
    analysis, props = await w.svc.propose(SYMBOL)  # the card: an account filter says why, no Approve
    assert not analysis.passed and props == []
    account = [f for f in analysis.filters if f.name == "account"]
    assert account and "netting account" in account[0].reason
    assert [p.volume for p in mt5.positions_get()] == [pytest.approx(0.01)]
    assert len(w.svc.store.trades.all()) == 1  # no phantom trade under an order ticket
    w.svc.store.close()


async def test_netting_approve_reply_says_why_when_a_position_appeared_meanwhile(cfg, bars, tmp_path):
    w, _, _ = world(cfg, bars, tmp_path, "netting")
    await w.svc.start(monitor=False)
    _, props = await w.svc.propose(SYMBOL)
    mt5.symbol_select(SYMBOL, True)
    tick = mt5.symbol_info_tick(SYMBOL)
    assert mt5.order_send(dict(action=mt5.TRADE_ACTION_DEAL, symbol=SYMBOL, volume=0.05, type=1, price=tick.bid,
                               deviation=100, magic=0, comment="trader", type_filling=mt5.ORDER_FILLING_FOK,
                               type_time=0)).retcode == 10009
    out = await w.svc.approve(props[0].id, k.TRADER)
    assert not out.ok and "netting account" in out.message and "nothing was sent" in out.message
    assert [p.volume for p in mt5.positions_get()] == [pytest.approx(0.05)]
    w.svc.store.close()


async def test_netting_volume_merged_by_a_trader_is_synced_and_closed_exactly(cfg, bars, tmp_path):
    w, _, _ = world(cfg, bars, tmp_path, "netting")
    out = await open_one(w)
    mt5.symbol_select(SYMBOL, True)
    tick = mt5.symbol_info_tick(SYMBOL)
    mt5.order_send(dict(action=mt5.TRADE_ACTION_DEAL, symbol=SYMBOL, volume=0.01, type=0, price=tick.ask,
                        deviation=100, magic=0, comment="trader adds", type_filling=mt5.ORDER_FILLING_FOK, type_time=0))
    await w.svc.monitor.run_cycle()
    assert w.svc.exits.get(out.ticket).volume == pytest.approx(0.02)  # /close would now ask for 0.02
    res = await w.svc.close_trade(out.ticket, k.TRADER)
    assert res.ok and mt5.positions_get() == ()
    closed = w.svc.store.closed.get(out.ticket)
    assert closed.volume == pytest.approx(0.02) and mt5.fake_state()["requests"][-1]["volume"] == pytest.approx(0.02)
    assert w.svc.health().account_mode == "netting" and NETTING == 0
    w.svc.store.close()


async def test_symbol_rules_are_reread_on_a_short_ttl_and_each_monitor_cycle(cfg, bars, tmp_path):
    """Stops/freeze level and trade mode change at rollover, weekends, broker decisions: the engine's copy
    lives SYMBOL_INFO_TTL, the monitor re-reads every cycle for the symbols in trade."""
    from core.trading.execution import SYMBOL_INFO_TTL

    w, _, _ = world(cfg, bars, tmp_path, "hedging")
    out = await open_one(w)
    mt5.fake_set_symbol(SYMBOL, freeze_level=7, trade_mode=mt5.SYMBOL_TRADE_MODE_CLOSEONLY)
    await w.svc.monitor.run_cycle()
    assert w.svc.monitor.views.last(SYMBOL).info.trade_freeze_level == 7  # this cycle's read
    w.clock.set(w.clock.now() + SYMBOL_INFO_TTL + 1)
    analysis, props = await w.svc.propose(SYMBOL)
    assert props == [] and any("close-only" in f.reason for f in analysis.filters if f.name == "account")
    assert out.ok
    w.svc.store.close()


async def test_health_text_shows_the_account_model(cfg, bars, tmp_path):
    from bot.health_text import health_text

    w, _, _ = world(cfg, bars, tmp_path, "netting")
    await w.svc.start(monitor=False)
    assert "Account: netting, USD" in health_text(w.svc.health())
    w.svc.store.close()


@pytest.mark.parametrize("mode", ["hedging", "netting"])
async def test_placed_is_not_reported_as_executed_and_a_later_fill_is_adopted(cfg, bars, tmp_path, mode):
    """The evidence run: 10008 then a fill 2 s later was reported "Executed at <the asked price>"."""
    w, _, _ = world(cfg, bars, tmp_path, mode)
    await w.svc.start(monitor=False)
    _, props = await w.svc.propose(SYMBOL)
    mt5.fake_inject("order_send", retcode=mt5.TRADE_RETCODE_PLACED, fill_after=40)  # beyond the bounded wait
    out = await w.svc.approve(props[0].id, k.TRADER)
    assert not out.ok and "Executed" not in out.message and "did not confirm" in out.message
    assert len(mt5.fake_state()["requests"]) == 1  # never resent
    for _ in range(30):
        w.step()
        await w.svc.monitor.run_cycle()
        if w.svc.exits.active_trades():
            break
    (t,) = w.svc.exits.active_trades()
    (p,) = mt5.positions_get()
    assert t.ticket == p.identifier and t.entry_price == pytest.approx(p.price_open)  # the real fill
    w.svc.store.close()


@pytest.mark.parametrize("mode", ["hedging", "netting"])
async def test_freeze_level_skips_the_breakeven_move_and_the_next_cycle_makes_it(cfg, bars, tmp_path, mode):
    w, _, _ = world(cfg, bars, tmp_path, mode)
    out = await open_one(w)
    mt5.fake_set_symbol(SYMBOL, freeze_level=100_000)  # every stop is inside the freeze distance
    frozen_cycles = 0
    for _ in range(40):
        w.step()
        rep = await w.svc.monitor.run_cycle()
        if any(s.kind == "breakeven" for s in rep.signals):
            frozen_cycles += 1
            assert rep.sl_moves == 0 and not rep.errors  # "not now": no error, no page
            if frozen_cycles == 2:
                break
    assert frozen_cycles == 2  # the rule fired again on the next cycle
    assert not [e for e in w.svc.store.errors.recent() if e.error_type == "breakeven_failed"]
    mt5.fake_set_symbol(SYMBOL, freeze_level=0)
    rep = await w.svc.monitor.run_cycle()
    assert rep.sl_moves == 1 and w.svc.exits.get(out.ticket).breakeven_moved
    w.svc.store.close()


async def test_trade_mode_short_only_refuses_a_long_on_the_card(cfg, bars, tmp_path):
    w, _, _ = world(cfg, bars, tmp_path, "hedging")
    await w.svc.start(monitor=False)
    mt5.fake_set_symbol(SYMBOL, trade_mode=mt5.SYMBOL_TRADE_MODE_SHORTONLY)
    analysis, props = await w.svc.propose(SYMBOL)
    assert props == [] and not analysis.strategies[0].viable
    assert "only sell positions" in analysis.strategies[0].reason
    assert any("only sell positions" in f.reason for f in analysis.filters if f.name == "account")
    assert mt5.fake_state()["requests"] == []
    w.svc.store.close()


@pytest.mark.parametrize("mode", ["hedging", "netting"])
async def test_order_check_refusal_is_said_in_the_approve_reply_and_nothing_is_sent(cfg, bars, tmp_path, mode):
    w, _, _ = world(cfg, bars, tmp_path, mode)
    await w.svc.start(monitor=False)
    _, props = await w.svc.propose(SYMBOL)
    mt5.fake_inject("order_check", retcode=mt5.TRADE_RETCODE_NO_MONEY)
    out = await w.svc.approve(props[0].id, k.TRADER)
    assert not out.ok and "not enough free margin" in out.message and "nothing was traded" in out.message
    assert mt5.fake_state()["requests"] == [] and mt5.positions_get() == ()
    w.svc.store.close()
