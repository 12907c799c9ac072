"""What the monitor knows about each symbol's market in one cycle: tick, recent bars, symbol info.

Fetched once per symbol per cycle (never per trade), so a cycle costs O(symbols) broker calls however
many trades are open. When a symbol's feed fails, the last view is reused while it is younger than
the `data_source_unavailable` policy's `max_age_minutes`: stale-but-recent prices still let breakeven
and invalidation rules run, while older ones are dropped rather than trusted.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import numpy as np

from core.brokers.base import Broker, BrokerError, SymbolInfo, Tick
from core.domain.timeframes import Timeframe

log = logging.getLogger(__name__)


@dataclass
class MarketView:
    tick: Tick
    candles: np.ndarray
    info: SymbolInfo
    timeframe: Timeframe
    at: float


class MarketViews:
    def __init__(self, cfg, broker: Broker, notifier, clock, offload=None) -> None:
        self.cfg = cfg
        self.offload = offload or asyncio.to_thread  # see Monitor
        self.broker = broker
        self.notify = notifier
        self.clock = clock
        self._last: dict[str, MarketView] = {}
        self._info: dict[str, SymbolInfo] = {}
        self._plans: dict[str, tuple[object, Timeframe, int]] = {}  # symbol -> (config, timeframe, bars)

    def last(self, symbol: str) -> MarketView | None:
        return self._last.get(symbol)

    def quotes(self) -> dict[str, Tick]:
        return {s: v.tick for s, v in self._last.items()}

    def symbol_info(self, symbol: str) -> SymbolInfo:
        """Re-read once per cycle for each symbol in trade: stops level, freeze level, volume step and trade
        mode change at rollover, at weekends and on broker decisions. The last good one stands in while
        the read fails (the tick read right after says whether the feed is there at all). A broker call:
        run it off the event loop."""
        try:
            info = self._info[symbol] = self.broker.symbol_info(symbol)
        except BrokerError:
            info = self._info.get(symbol)
            if info is None:
                raise
        return info

    def plan(self, symbol: str) -> tuple[Timeframe, int]:
        """The symbol's bar timeframe and how many bars a cycle reads, from the config. The config is frozen
        and `for_symbol`'s answer is fixed per config object, so they are worked out once per config object
        (a new config, e.g. after a reload, is planned afresh)."""
        hit = self._plans.get(symbol)
        if hit is not None and hit[0] is self.cfg:
            return hit[1], hit[2]
        tcfg = self.cfg.for_symbol(symbol)
        tf = Timeframe.parse(tcfg.range_detection.timeframe)
        count = max(tcfg.range_invalidation.candles_outside_range + 2, 64)
        self._plans[symbol] = (self.cfg, tf, count)
        return tf, count

    def candle_count(self, symbol: str) -> int:
        return self.plan(symbol)[1]

    def _read(self, symbol: str, tf: Timeframe, count: int) -> tuple[SymbolInfo, Tick, np.ndarray]:
        """Symbol info, tick and bars, in this order, in one worker-thread hop instead of three."""
        info = self.symbol_info(symbol)
        return info, self.broker.tick(symbol), self.broker.candles(symbol, tf, count)

    async def fetch(self, symbols: set[str], errors: list[str]) -> dict[str, MarketView]:
        """One tick and one candle request per symbol; problems are appended to `errors`."""
        views: dict[str, MarketView] = {}
        for sym in sorted(symbols):
            tf, count = self.plan(sym)
            try:
                info, tick, candles = await self.offload(self._read, sym, tf, count)
                views[sym] = self._last[sym] = MarketView(tick, candles, info, tf, self.clock.now())
            except Exception as e:  # noqa: BLE001 - one symbol's bad feed must not blind the other symbols
                msg = e.message if isinstance(e, BrokerError) else f"{type(e).__name__}: {e}"
                if not isinstance(e, BrokerError):
                    log.exception("fetching %s failed", sym)
                errors.append(f"{sym}: {msg}")
                last = self._last.get(sym)
                pol = self.cfg.for_symbol(sym).error_handling.get("data_source_unavailable")
                max_age = (pol.max_age_minutes or 0) * 60 if pol else 0
                if last is not None and self.clock.now() - last.at <= max_age:
                    views[sym] = last
                self.notify.error("data_source_unavailable", f"{sym} prices unavailable: {msg}",
                                  alert=False, symbol=sym)
        return views
