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
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")

# CPU-bound (numpy, matplotlib under the GIL): more threads than cores only adds switching
ANALYSIS_POOL = ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2)), thread_name_prefix="analysis")


def analysis_key(cfg, symbol: str, now: float) -> tuple:
    """(symbol, last closed bar, config version): within one bar of the finest timeframe the analysis
    reads, its closed inputs are the same for everyone; a new bar or a config change is a new key."""
    from core.analysis.pipeline import analysis_step_seconds

    step = analysis_step_seconds(cfg.for_symbol(symbol))
    return symbol, int(now // step), cfg.version


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
