"""/status, /trades and the close page tell one trade in the same words and number formats.

Real XAUUSDc bars on the paper broker: a short that runs into its stop. R used to read "+0.26R" in
/status and /trades but "+0.26 R" in the pages about the same trade, and /trades ended each line with the
journal's code ("stop_loss") where the page now says "stop loss hit"; and its money was before the
commission while the page's (and /metrics') is after it.
"""
from __future__ import annotations

import re

import lifecycle_helpers as k
import pytest

from bot.commands import CommandRouter
from core.domain.models import Direction

SYMBOL = "XAUUSDc"


@pytest.fixture(scope="module")
def cfg():
    return k.config({"broker": {"paper": {"commission_per_lot": 7.0}}})


async def test_status_trades_and_close_page_agree_on_one_trade(cfg, tmp_path):
    bars = k.m5(cfg)
    svc, clock, inner = await k.paper_service(cfg, tmp_path, float(bars["time"][30000]), start=False,
                                              direction=Direction.SHORT)
    got = k.collect_alerts(svc, "telegram")
    await svc.start(monitor=False)
    router = CommandRouter(svc, cfg)
    currency = svc.broker.account_info().currency
    (ticket,) = await k.open_trades(svc, SYMBOL)
    clock.advance(60)
    inner.advance_to(clock.now())
    await svc.monitor.run_cycle()

    status = (await router.handle_text("/status", k.TRADER)).text
    (row,) = svc.status()
    lines = status.splitlines()
    assert lines[1] == f"#{ticket} {SYMBOL} SHORT ▼ bb_fade"
    r = f"{row.pnl_r:+.2f} R".replace("-0.00", "+0.00")
    assert lines[3].startswith(f"   P&L {r} ({row.pnl:+.2f} {currency}) · 1m · breakeven no"), status

    for _ in range(400):
        clock.advance(60)
        inner.advance_to(clock.now())
        await svc.monitor.run_cycle()
        if svc.exits.get(ticket) is None:
            break
    await svc.alerts.drain()
    closed = svc.store.closed.get(ticket)
    assert closed is not None and closed.exit_reason == "stop_loss"

    trades = (await router.handle_text("/trades 5", k.TRADER)).text
    r = f"{closed.r_multiple:+.2f} R"
    assert closed.commission != 0
    money = f"{closed.pnl - abs(closed.commission):+.2f} {currency}"
    assert trades.splitlines() == [
        "Last closed trade:",
        f"🔴 #{ticket} {SYMBOL} short bb_fade",
        f"   {closed.entry_price:.2f}→{closed.exit_price:.2f} {r} P&L {money} · stop loss hit",
    ], trades
    (page,) = [a for a in got if a.kind == "exit_executed"]
    assert page.title.endswith(f"closed: {r}, {money}") and "Why: stop loss hit." in page.text
    assert not re.search(r"\d\.\d\dR\b", status + trades + page.title + page.text)  # one R format everywhere
    svc.store.close()
    inner.close()
