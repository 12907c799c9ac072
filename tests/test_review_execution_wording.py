"""The executed outcome and the 'opened'/'closed' alerts print prices at the symbol's digits, and the
card's outcome line does not repeat what its first line already says.

Before: "✅ Executed at 3210.80 · ticket 7" followed by "Executed: BUY 0.01 XAUUSDc at 3210.8 (SL
3205.1, TP 3221.3), ticket 7, …" — the same fill twice, once as a raw float. Real PaperBroker on
real XAUUSD bars (lifecycle_helpers)."""
from __future__ import annotations

import re

import lifecycle_helpers as k
import pytest

from bot import presenter

SYMBOL = "XAUUSDc"


@pytest.fixture(scope="module")
def cfg():
    return k.config()


def _prices(text: str) -> list[str]:
    return re.findall(r"(?:at|SL|TP) (\d+\.\d+)", text)


async def test_executed_outcome_and_alerts_use_symbol_digits(cfg, tmp_path):
    digits = cfg.symbols[SYMBOL].digits
    bars = k.m5(cfg, SYMBOL)
    svc, _, _ = await k.paper_service(cfg, tmp_path, float(bars["time"][30000]), wrap=None, connect=False)
    _, props = await svc.propose(SYMBOL)
    out = await svc.approve(props[0].id, k.TRADER)
    assert out.ok and out.ticket is not None

    found = _prices(out.message)
    assert len(found) == 3 and all(len(p.split(".")[1]) == digits for p in found), out.message
    assert f"SL {out.detail.split('SL ')[1].split(' ')[0]}" in out.message  # the detail's SL is the message's SL

    line = presenter.outcome_text(out, digits)
    first, *rest = line.splitlines()
    assert first == f"✅ Executed at {out.fill_price:.{digits}f} · ticket {out.ticket}"
    assert rest and str(out.ticket) not in "\n".join(rest) and "Executed" not in "\n".join(rest)

    opened = [a for a in svc.notifier.sent if a.kind == "trade_opened"][-1]
    assert all(len(p.split(".")[1]) == digits for p in _prices(opened.text))
    # named like the close page names it: symbol, direction, ticket
    side = svc.store.trades.get(out.ticket).direction.value.upper()
    assert opened.title == f"{opened.symbol} {side} #{out.ticket} opened", opened.title
    await svc.close_trade(out.ticket, k.TRADER)
    closed = [a for a in svc.notifier.sent if a.kind == "exit_executed"][-1]
    at = re.search(r"Closed at (\d+\.\d+)", closed.text)
    assert at and len(at.group(1).split(".")[1]) == digits, closed.text
    currency = svc.broker.account_info().currency
    assert re.search(rf"P&L [+-]\d+\.\d\d {currency}\.$", closed.text, re.M), closed.text  # the money's unit
