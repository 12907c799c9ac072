"""The replay's inline offload gives what `asyncio.to_thread` gives on a ReplayLoop, and only a replay uses it."""
from __future__ import annotations

import asyncio
import contextvars

import numpy as np
import pytest

from core.backtest.replay_loop import ReplayLoop, inline

VAR = contextvars.ContextVar("VAR", default="outer")


def _work(x, y=1):
    before = VAR.get()
    VAR.set("inner")  # must not leak into the caller: to_thread runs the call in a copy of the context
    if x < 0:
        raise ValueError(f"no {x}")
    return (x * y, before, asyncio.get_running_loop() is not None)


async def _calls(offload):
    out = []
    for args in [(2,), (3, 4), (-1,)]:
        try:
            out.append(await offload(_work, *args))
        except ValueError as e:
            out.append(("raised", str(e)))
        out.append(VAR.get())
    return out


def test_inline_matches_to_thread_on_a_replay_loop():
    loop = ReplayLoop()
    try:
        want = loop.drive(_calls(asyncio.to_thread))
        got = loop.drive(_calls(inline))
    finally:
        loop.close()
    assert got == want
    assert want[0] == (2, "outer", True) and want[1] == "outer" and want[-2] == ("raised", "no -1")


def test_only_the_replay_wires_the_inline_offload():
    from core.backtest.live import LiveParts
    from core.config.loading import load_config
    from core.data.candles import CANDLE_DTYPE
    from core.domain.timeframes import Timeframe
    from core.exits.executor import ExitExecutor
    from core.exits.monitor import Monitor
    from core.trading.execution import ExecutionEngine

    cfg = load_config()
    sym = next(iter(cfg.symbols))
    bars = np.zeros(3, dtype=CANDLE_DTYPE)
    bars["time"] = [0, 300, 600]
    bars["open"] = bars["high"] = bars["low"] = bars["close"] = 1.0
    parts = LiveParts(cfg, sym, bars, Timeframe.M5)
    try:
        assert parts.monitor.offload is inline and parts.monitor.views.offload is inline
        assert parts.exit_executor.offload is inline and parts.execution.offload is inline
    finally:
        parts.shutdown()
    live = Monitor(cfg, parts.broker, parts.exits, ExitExecutor(cfg, parts.broker, None, parts.exits, None), None,
                   parts.clock)
    assert live.offload is asyncio.to_thread and live.views.offload is asyncio.to_thread
    assert live.executor.offload is asyncio.to_thread
    engine = ExecutionEngine(cfg, parts.store, parts.broker, parts.exits, parts.notifier, parts.clock)
    assert engine.offload is asyncio.to_thread


if __name__ == "__main__":
    pytest.main([__file__])
