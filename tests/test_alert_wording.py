"""Every page a trader gets about an open trade, read as a phone shows it (real XAUUSDc bars, paper broker).

A lock screen shows the title and the first line: they must say which trade (symbol, side, ticket) and
what happened, with the result (R and money with its currency) for a close, or what to do for a page
that asks for a human. The journal's codes (`breakeven_stop`, `max_time_in_trade`) used to reach the
chat as they are, and a close's title ("XAUUSDc: range scalp closed") carried neither side nor result.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime

import lifecycle_helpers as k

from bot.commands import CommandRouter
from bot.presenter import alert_text
from core.brokers.base import BrokerError, OrderRequest
from core.domain.models import Direction

SYMBOL = "XAUUSDc"
START = 30000  # a London-session bar: the setups below are what the real bars after it do
SNAKE = re.compile(r"\b[a-z]+_[a-z_]+\b")  # an internal name: stop_loss, max_time_in_trade
LONG_FLOAT = re.compile(r"\d\.\d{3,}")  # XAUUSDc has 2 digits: more is a raw float


def phone_ok(alert) -> str:
    """The rendered page, after the checks every page must pass; returned for the specific ones."""
    page = alert_text(alert)
    title = page.splitlines()[0]
    assert len(title) <= 60, title
    assert not SNAKE.search(page) and not LONG_FLOAT.search(page), page
    assert "-0.00" not in page, page
    return page


async def lifecycle(tmp_path, overrides=None, *, direction=Direction.LONG, risk_atr=1.5, before=None):
    """Open one trade on the real replay, run 1-minute monitor cycles until it is closed; the pages."""
    cfg = k.config(overrides)
    bars = k.m5(cfg)
    svc, clock, inner = await k.paper_service(cfg, tmp_path, float(bars["time"][START]), start=False,
                                              direction=direction, risk_atr=risk_atr)
    got = k.collect_alerts(svc, "telegram")
    await svc.start(monitor=False)
    (ticket,) = await k.open_trades(svc, SYMBOL)
    if before is not None:
        before(svc, ticket)
    for _ in range(400):
        clock.advance(60)
        inner.advance_to(clock.now())
        await svc.monitor.run_cycle()
        if svc.exits.get(ticket) is None:
            break
    await svc.alerts.drain()
    return svc, inner, ticket, got


def the(got, kind):
    (alert,) = [a for a in got if a.kind == kind]
    return alert


async def close_page(svc, ticket, got, side: str) -> tuple[str, object]:
    closed = svc.store.closed.get(ticket)
    assert closed is not None
    page = phone_ok(the(got, "exit_executed"))
    currency = svc.broker.account_info().currency
    title, first, why = page.splitlines()
    r = f"{closed.r_multiple:+.2f} R".replace("-0.00", "+0.00")
    money = f"{closed.pnl - abs(closed.commission):+.2f} {currency}"
    assert title.endswith(f"{SYMBOL} {side} #{ticket} closed: {r}, {money}"), title
    at = datetime.fromtimestamp(closed.exit_time, UTC).strftime("%d %b %H:%M UTC")  # when it closed (#19)
    assert first == f"Closed at {closed.exit_price:.2f} on {at}: {r}, P&L {money}.", first
    return why, closed


async def test_stop_loss_close_says_which_trade_the_result_and_why(tmp_path):
    svc, inner, ticket, got = await lifecycle(tmp_path, direction=Direction.SHORT)
    why, closed = await close_page(svc, ticket, got, "SHORT")
    assert closed.exit_reason == "stop_loss" and closed.r_multiple < -0.9
    assert why == "Why: stop loss hit."
    svc.store.close()
    inner.close()


async def test_breakeven_stop_close_and_trades_list_say_it_in_words(tmp_path):
    svc, inner, ticket, got = await lifecycle(tmp_path)
    why, closed = await close_page(svc, ticket, got, "LONG")
    assert closed.exit_reason == "breakeven_stop"
    assert why == "Why: breakeven stop hit."
    moved = phone_ok(the(svc.notifier.sent, "breakeven_moved"))
    assert re.search(r"stop moved to entry plus costs at \d+\.\d\d\.$", moved), moved
    reply = await CommandRouter(svc, svc.cfg).handle_text("/trades 5", k.TRADER)
    assert "· breakeven stop hit" in reply.text and "breakeven_stop" not in reply.text, reply.text
    svc.store.close()
    inner.close()


async def test_time_limit_close_gives_the_rule_in_words(tmp_path):
    svc, inner, ticket, got = await lifecycle(tmp_path, {"exits": {"max_minutes_in_trade": 5}}, risk_atr=4)
    why, closed = await close_page(svc, ticket, got, "LONG")
    assert closed.exit_reason == "max_time_in_trade"
    assert why.startswith("Why: time limit: the trade has been open 5 minutes, past the 5-minute limit"), why
    svc.store.close()
    inner.close()


async def test_stalled_close_gives_the_rule_in_words(tmp_path):
    svc, inner, ticket, got = await lifecycle(
        tmp_path, {"exits": {"stall_minutes": 5, "max_minutes_in_trade": 600}}, risk_atr=6)
    why, closed = await close_page(svc, ticket, got, "LONG")
    assert closed.exit_reason == "stalled"
    assert why.startswith("Why: stalled: after 5 minutes price is still next to the entry"), why
    svc.store.close()
    inner.close()


def _range_left_behind(svc, ticket) -> None:
    """The real closes after entry sit far above this trade's range: the market has left it."""
    t = svc.exits.get(ticket)
    top = t.entry_price - 20 * t.range_data.atr

    def moved(tr):
        return {"range_data": tr.range_data.model_copy(update={"range_high": top, "range_low": top - 5.0})}

    svc.exits.update_trade_state(ticket, moved)


async def test_range_invalidation_page_says_what_the_bot_does_first(tmp_path):
    svc, inner, ticket, got = await lifecycle(tmp_path, risk_atr=6, before=_range_left_behind)
    page = phone_ok(the(got, "range_invalidated"))
    title, text = page.splitlines()
    assert title == f"ℹ️ RANGE INVALIDATED - {SYMBOL} LONG #{ticket}"  # information, not a page (#19)
    assert re.match(r"Closing the trade now: 2 M5 candles in a row closed above the range high \d+\.\d\d "
                    r"\(last close \d+\.\d\d at \d\d:\d\d UTC\)", text), text
    why, closed = await close_page(svc, ticket, got, "LONG")
    assert closed.exit_reason == "range_invalidated" and why.startswith("Why: range broken: 2 M5 candles"), why
    svc.store.close()
    inner.close()


async def test_exit_failed_page_puts_the_action_first_and_the_stop_at_its_digits(tmp_path):
    def refuse(svc, _ticket):
        svc.broker.fail("close_position", *[BrokerError("requote", 10004)] * 3)

    svc, inner, ticket, got = await lifecycle(tmp_path, {"exits": {"max_minutes_in_trade": 5}}, risk_atr=6,
                                              before=refuse)
    trade_sl = svc.store.closed.get(ticket).initial_sl
    page = phone_ok(the(got, "exit_failed"))
    title, action, still_open, wanted = page.splitlines()
    assert title == f"⚠️ EXIT FAILED - {SYMBOL} LONG #{ticket}"
    assert action == (f"Please close it manually in MetaTrader; its broker-side stop at {trade_sl:.2f} "
                      "stays in place."), action
    assert still_open.startswith("Why it is still open: the broker refused the close") and "requote" in still_open
    assert wanted.startswith("Exit wanted: time limit: the trade has been open"), wanted
    # the next cycle's close went through: that page is the ordinary close
    why, _ = await close_page(svc, ticket, got, "LONG")
    assert why.startswith("Why: time limit:")
    svc.store.close()
    inner.close()


async def test_orphan_auto_disable_and_system_error_pages_read_as_words(tmp_path):
    cfg = k.config()
    bars = k.m5(cfg)
    svc, clock, inner = await k.paper_service(cfg, tmp_path, float(bars["time"][START]), start=False)
    got = k.collect_alerts(svc, "telegram")
    await svc.start(monitor=False)
    tick = inner.tick(SYMBOL)
    # a position with our magic the store never saw (placed in MetaTrader, or lost with a crashed store);
    # its SL/TP are the odd floats a hand-typed order gets
    magic = cfg.for_symbol(SYMBOL).execution.magic_number
    inner.market_order(OrderRequest(symbol=SYMBOL, side="buy", volume=0.01, sl=tick.ask - 7.777,
                                    tp=tick.ask + 9.1234, magic=magic, comment="manual"))
    clock.advance(60)
    inner.advance_to(clock.now())
    await svc.monitor.run_cycle()
    for i in range(3):  # the monitor crashing three times within the hour trips the auto-disable
        svc.notifier.error("monitoring_loop_crashed", f"monitor cycle crashed: RuntimeError: boom {i}")
        clock.advance(61)
    await svc.alerts.drain()

    orphan = phone_ok(the(got, "orphan_adopted"))
    (pos,) = inner.positions()
    assert orphan.splitlines()[0] == f"🚨 ORPHAN ADOPTED - {SYMBOL} LONG #{pos.ticket}"
    assert f"at {pos.price_open:.2f} (SL {pos.sl:.2f}, TP {pos.tp:.2f})" in orphan, orphan
    assert "check it in MetaTrader" in orphan
    off = phone_ok(the(got, "auto_disabled"))
    assert off.splitlines()[0] == "🚨 AUTO-DISABLED: no new trades"
    assert "3 critical errors in the last hour (limit 3)" in off and off.endswith("Check /health, then /resume.")
    crashes = [a for a in got if a.kind == "system_error"]
    assert crashes and all(phone_ok(a).startswith("🚨 System error: monitoring loop crashed\n") for a in crashes)
    svc.store.close()
    inner.close()


async def test_named_alerts_print_prices_at_the_symbol_digits(tmp_path):
    """`RangeScalpingAlerts.alert_exit_executed/alert_exit_failed` (the ErrorHandler's manual-close page):
    a price computed in floats (3371.16 + 0.1 + 0.2) printed raw, and the page claimed a stop was in place
    without knowing the trade."""
    cfg = k.config()
    bars = k.m5(cfg)
    svc, clock, inner = await k.paper_service(cfg, tmp_path, float(bars["time"][START]), start=False)
    got = k.collect_alerts(svc, "telegram")
    await svc.start(monitor=False)
    (ticket,) = await k.open_trades(svc, SYMBOL)
    trade = svc.exits.get(ticket)
    price = trade.entry_price + 0.1 + 0.2
    assert LONG_FLOAT.search(repr(price))  # the float really is noisy
    svc.alerts.alert_exit_executed(trade, price, "take_profit", pnl=0.3)
    svc.alerts.alert_exit_failed(ticket, SYMBOL, "requote", trade=trade, attempts=4)
    svc.alerts.alert_exit_failed(ticket + 1, SYMBOL, "requote", attempts=4)
    await svc.alerts.drain()
    executed = phone_ok(the(got, "exit_executed"))
    r = trade.r_multiple(price)
    at = datetime.fromtimestamp(svc.clock.now(), UTC).strftime("%d %b %H:%M UTC")
    assert executed.splitlines()[1:] == [f"Closed at {price:.2f} on {at}: {r:+.2f} R, P&L +0.30.",
                                         "Why: take profit hit."]
    known, unknown = (phone_ok(a) for a in got if a.kind == "exit_failed")
    assert known.splitlines()[1] == (f"MANUAL CLOSE REQUIRED: could not close {SYMBOL} #{ticket} after 4 attempts "
                                     f"(requote). Its broker-side stop at {trade.sl:.2f} stays in place.")
    assert unknown.endswith("Check its stop loss in MetaTrader.")
    svc.store.close()
    inner.close()
