"""Entries the account model or the symbol's trade mode forbid, said on the card and in the Approve reply.

Split from `core.trading.execution`. On a netting account (MT5 ACCOUNT_MARGIN_MODE_RETAIL_NETTING or
EXCHANGE) a symbol has ONE position: a second entry adds to it, an opposite one reduces or reverses it, so a
position is not one trade. A range scalp is therefore refused on a symbol that already has any position,
ours or the trader's. Hedging accounts (and the paper broker) take one position per trade, as before.
The MT5 adapter refuses the same orders again at send time (defence in depth).
"""
from __future__ import annotations

import asyncio

from core.brokers.base import BrokerError, SymbolInfo, netting_refusal, trade_mode_refusal
from core.domain.models import AnalysisResult, Direction, FilterResult


async def account_refusal(broker, cfg, symbol: str, side: str, info: SymbolInfo) -> str | None:
    """Why no new `side` entry on `symbol` now (None: it may go): the symbol's trade mode (disabled, long
    only, short only, close only), or a netting account already holding a position on the symbol."""
    why = trade_mode_refusal(info.trade_mode, side)
    if why:
        return f"{symbol}: {why}"
    if getattr(broker, "netting", False):
        held = await asyncio.to_thread(broker.positions, symbol)
        if held:
            return netting_refusal(symbol, held, cfg.for_symbol(symbol).execution.magic_number)
    return None


async def with_account_rules(engine, analysis: AnalysisResult) -> AnalysisResult:
    """`analysis` with a failed "account" filter when the entry would be refused, so the card offers no
    Approve that cannot work. A broker that cannot be asked leaves the card as it is (send time checks)."""
    if not analysis.passed or analysis.range is None:
        return analysis
    s = next((x for x in analysis.strategies if x.viable), None)
    if s is None:
        return analysis
    try:
        why = await engine.account_refusal(analysis.symbol, "buy" if s.direction is Direction.LONG else "sell")
    except BrokerError:
        return analysis
    if not why:
        return analysis
    rule = FilterResult(name="account", passed=False, reason=f"{why[:1].upper()}{why[1:]}.")
    return analysis.model_copy(update={"filters": [*analysis.filters, rule], "passed": False})
