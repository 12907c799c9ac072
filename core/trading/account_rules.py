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
    """`analysis` as the account can act on it: a strategy whose direction the trade mode forbids (long only,
    short only) is marked not viable with the reason; when no viable strategy is left (close only,
    disabled, a netting account with a position on the symbol) a failed "account" filter says why, so the
    card offers no Approve that cannot work. A broker that cannot be asked leaves the card as it is (the
    send re-checks)."""
    if not analysis.passed or analysis.range is None:
        return analysis
    viable = [x for x in analysis.strategies if x.viable]
    if not viable:
        return analysis
    why: dict[str, str | None] = {}
    try:
        for side in {"buy" if x.direction is Direction.LONG else "sell" for x in viable}:
            why[side] = await engine.account_refusal(analysis.symbol, side)
    except BrokerError:
        return analysis
    if not any(why.values()):
        return analysis
    strategies = [x if not x.viable or not why["buy" if x.direction is Direction.LONG else "sell"]
                  else x.model_copy(update={"viable": False,
                                            "reason": why["buy" if x.direction is Direction.LONG else "sell"]})
                  for x in analysis.strategies]
    if any(x.viable for x in strategies):
        return analysis.model_copy(update={"strategies": strategies})
    first = next(w for w in why.values() if w)
    rule = FilterResult(name="account", passed=False, reason=f"{first[:1].upper()}{first[1:]}.")
    return analysis.model_copy(update={"filters": [*analysis.filters, rule], "passed": False,
                                       "strategies": strategies})
