"""Second review: the monitor on an accelerated paper replay clock (`moneybot run`, 60x by default).

`monitor.interval_seconds` (300) is market time between checks. The loop waited 300 *wall* seconds,
i.e. five replay hours at 60x: breakeven, range invalidation and the time limits (240 minutes) were
judged about once per five market hours.
"""
from __future__ import annotations

import asyncio

import lifecycle_helpers as k
import pytest

from core.brokers.paper.feed import AcceleratedClock
from core.domain.clock import FixedClock

NEAR = 1_746_003_600.0  # 2025-04-30 09:00 UTC


@pytest.fixture(scope="module")
def cfg():
    return k.config()


async def _svc(cfg, tmp_path, speed: float):
    wall = FixedClock(1_800_000_000.0)
    clock = AcceleratedClock(k.common_time(cfg, ("XAUUSDc",), near=NEAR), speed=speed, wall=wall)
    svc, _, inner = await k.paper_service(cfg, tmp_path, clock, wrap=None, start=False)
    return svc, wall, inner


async def test_monitor_interval_is_market_time_on_an_accelerated_replay(cfg, tmp_path):
    speed = 60.0
    svc, _, inner = await _svc(cfg, tmp_path, speed)
    # 300 market seconds at 60x are 5 wall seconds between cycles, as one M5 bar per check live
    assert svc.monitor.interval == pytest.approx(cfg.monitor.interval_seconds / speed)
    fixed = k.service(cfg, tmp_path, FixedClock(NEAR), broker=inner, store_name="other.sqlite")
    assert fixed.monitor.interval == cfg.monitor.interval_seconds  # step mode / live: unchanged
    svc.store.close()
    fixed.store.close()
    inner.close()


async def test_the_running_monitor_checks_each_market_interval_on_a_fast_replay(cfg, tmp_path):
    svc, _, inner = await _svc(cfg, tmp_path, speed=1200.0)  # 300 market s = 0.25 wall s
    await svc.start()
    try:
        await asyncio.sleep(1.2)
        assert svc.monitor.cycles >= 3, f"only {svc.monitor.cycles} cycle(s) in 1.2 wall s (20+ market minutes)"
    finally:
        await svc.stop()
        svc.store.close()
        inner.close()
