"""The live part of a /scalp card: the quote now, whether the proposed entry is still in reach, and how
old the analysis is.

The analysis of a closed bar is cached and shared by everyone who asks during that bar
(`core.analysis.cache`); the quote is not: it is fetched for every card, and judged with the same check
Approve applies (`validate_entry_price`), so a card never shows a stale price as current."""
from __future__ import annotations

import asyncio
import logging

from pydantic import BaseModel

from core.brokers.base import BrokerError, Tick
from core.domain.models import AnalysisResult
from core.trading.order_checks import validate_entry_price

log = logging.getLogger(__name__)


class LiveQuote(BaseModel):
    bid: float
    ask: float
    quote_time: float
    analysis_age_seconds: float  # now - the moment the (possibly cached) analysis was made
    entry_ok: bool | None = None  # None: no viable strategy to check
    entry_message: str = ""
    slippage_pct: float | None = None


async def fetch_live_quote(broker, cfg, clock, analysis: AnalysisResult) -> LiveQuote | None:
    """The quote now (off the event loop) judged against the analysis; None when the broker has none."""
    try:
        tick = await asyncio.to_thread(broker.tick, analysis.symbol)
    except BrokerError as e:
        log.info("no live quote for %s: %s", analysis.symbol, e)
        return None
    ex = cfg.for_symbol(analysis.symbol).execution
    return live_quote(analysis, tick, clock.now(), ex.max_entry_slippage_pct)


def live_quote(analysis: AnalysisResult, tick: Tick, now: float, max_slippage_pct: float) -> LiveQuote:
    made = analysis.data_timestamps.get("now", analysis.as_of)
    out = LiveQuote(bid=tick.bid, ask=tick.ask, quote_time=tick.time, analysis_age_seconds=max(0.0, now - made))
    top = analysis.top if analysis.passed else None
    if top is None:
        return out
    check = validate_entry_price(top.direction, top.entry, tick.bid, tick.ask, max_slippage_pct)
    return out.model_copy(update={"entry_ok": check.ok, "entry_message": check.message,
                                  "slippage_pct": check.slippage_pct if check.slippage_pct != float("inf") else None})
