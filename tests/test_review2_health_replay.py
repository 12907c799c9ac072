"""Second review: /health on an accelerated paper replay clock (`moneybot run`, 60x by default).

It compared the monitor heartbeat's age on the replay clock (market seconds) with a threshold in wall
seconds, so between any two cycles it reported "monitor heartbeat is 300 s old" and ok=False.
"""
from __future__ import annotations

import lifecycle_helpers as k
import pytest
from test_review2_replay_clock import _svc


@pytest.fixture(scope="module")
def cfg():
    return k.config()


async def test_health_does_not_call_the_monitor_stale_between_cycles_on_a_replay(cfg, tmp_path):
    speed = 60.0
    svc, wall, inner = await _svc(cfg, tmp_path, speed)
    await svc.start()
    try:
        await svc.monitor.run_cycle()
        wall.advance(cfg.monitor.interval_seconds / speed)  # one cycle's wait later: 300 market seconds
        h = svc.health()
        assert not any("heartbeat" in p for p in h.problems), h.problems
        wall.advance(30 * cfg.monitor.interval_seconds / speed)  # 30 missed cycles (150 wall s): really stale
        h = svc.health()
        assert any("heartbeat" in p for p in h.problems), h.problems
    finally:
        await svc.stop()
        svc.store.close()
        inner.close()
