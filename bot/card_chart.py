"""The chart under a /scalp card, drawn once per (symbol, closed bar, config version, verdict).

Concurrent /scalp of one symbol await one render; renders run in the analysis pool (matplotlib's object
API on an Agg canvas, no pyplot state), so different symbols draw in parallel and the event loop never
waits on a PNG. A failed render is logged and not kept: the card goes out without a chart."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot import chart as chart_mod
from core.api import ANALYSIS_POOL, SingleFlightCache
from core.domain.models import AnalysisResult

log = logging.getLogger(__name__)

CHART_BARS = 120


class CardCharts:
    def __init__(self, max_entries: int = 32) -> None:
        self.cache: SingleFlightCache[bytes | None] = SingleFlightCache(max_entries=max_entries)

    @staticmethod
    def key(analysis: AnalysisResult, digits: int) -> tuple:
        top = analysis.top if analysis.passed else None
        return (analysis.symbol, analysis.timeframe, analysis.as_of, analysis.config_version, analysis.passed,
                (top.strategy, top.direction.value, top.entry, top.stop_loss, top.take_profit) if top else None,
                analysis.range.model_dump_json() if analysis.range else None, digits)

    async def get(self, analysis: AnalysisResult, digits: int,
                  candles: Callable[[str, str, int], Awaitable[Any]]) -> bytes | None:
        async def render() -> bytes | None:
            bars = await candles(analysis.symbol, analysis.timeframe, CHART_BARS + 200)
            if bars is None or len(bars) == 0:
                return None
            return await asyncio.get_running_loop().run_in_executor(
                ANALYSIS_POOL, chart_mod.render_analysis_chart, bars, analysis, digits)

        try:
            return await self.cache.get(self.key(analysis, digits), render)
        except Exception:
            log.exception("chart for %s failed", analysis.symbol)
            return None
