"""Single-flight, bounded caches for work that is the same for everyone who asks within one closed bar.

Within one closed bar a symbol's analysis (and its chart) is the same for every trader: 100 concurrent
`/scalp XAUUSDc` used to run 100 analyses and draw 100 charts on 2 cores (5-20 s). Here the first request
for a key starts the computation as a task of its own and every later request for the same key awaits
that one task (a cancelled asker does not cancel it for the others); a finished result is kept under its
key. The key carries what makes it stale (symbol, last closed bar, config version), so invalidation is
exact: a new bar or a config change is a new key, and old keys fall out by LRU order.
A computation that fails is not kept: the next request tries again.

`ANALYSIS_POOL` is where the CPU work runs: a pool of its own, so that a flood of analyses never queues
ahead of the broker calls of /close, /status or /emergency in asyncio's default executor.
"""
from __future__ import annotations

import asyncio
import math
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")

# CPU-bound (numpy, matplotlib under the GIL): more threads than cores only adds switching
ANALYSIS_POOL = ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2)), thread_name_prefix="analysis")


def analysis_key(cfg, symbol: str, now: float, tick=None) -> tuple:
    """(symbol, last closed bar, config version, quote bucket): within one bar of the finest timeframe the
    analysis reads, its closed inputs are the same for everyone; a new bar or a config change is a new key.
    The analysis also reads the quote (price location, entry at bid/ask, the spread filter), so a quote
    that has moved by more than the entry slippage allowed, or a spread that has changed by more than ~40%,
    is a new key too: under load everyone shares one run, but a card never rests on a quote that has left."""
    from core.analysis.pipeline import analysis_step_seconds

    tcfg = cfg.for_symbol(symbol)
    step = analysis_step_seconds(tcfg)
    return symbol, int(now // step), cfg.version, _quote_bucket(tick, tcfg.execution.max_entry_slippage_pct)


def _quote_bucket(tick, slippage_pct: float) -> tuple | None:
    try:
        bid, ask = float(tick.bid), float(tick.ask)
    except (AttributeError, TypeError, ValueError):
        return None
    mid = (bid + ask) / 2
    if not (math.isfinite(bid) and math.isfinite(ask) and 0 < bid <= ask):
        return None
    # relative steps of `slippage_pct` (log scale: the same width in % at any price level)
    return math.floor(math.log(mid) / math.log1p(slippage_pct / 100)), round(math.log2(max(ask - bid, mid * 1e-9)) * 2)


class SingleFlightCache(Generic[T]):
    def __init__(self, max_entries: int = 64) -> None:
        self.max_entries = max_entries
        self._done: OrderedDict[Hashable, T] = OrderedDict()
        self._running: dict[Hashable, asyncio.Task] = {}
        self.computed = 0  # how many computations ran (for tests and benches)

    def clear(self) -> None:
        self._done.clear()

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        if key in self._done:
            self._done.move_to_end(key)
            return self._done[key]
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(self._run(key, compute))
            self._running[key] = task
        return await asyncio.shield(task)

    async def _run(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        try:
            self.computed += 1
            value = await compute()
            self._done[key] = value
            self._done.move_to_end(key)
            while len(self._done) > self.max_entries:
                self._done.popitem(last=False)
            return value
        finally:
            self._running.pop(key, None)
