"""Review of the alerts during a long broker outage (real-data paper broker behind a failing link).

The "BROKER CONNECTION LOST" alert (critical: every chat) was sent by each cycle that could not
reconnect. Its dedup window (`alerts.dedup_window_seconds`, 300 s) is no longer than the default
monitor interval (300 s) plus the reconnect retries, so every cycle of an outage paged the trader
again: a dozen critical pages an hour saying the same thing. Now: once when the link is lost, a
reminder each hour while it stays down, and again at once for the next outage after a restore.
"""
from __future__ import annotations

import lifecycle_helpers as k
import pytest

from core.domain.clock import FixedClock
from core.ops.notify import REMINDER_SECONDS


@pytest.fixture(scope="module")
def cfg():
    return k.config()


async def test_an_outage_pages_once_then_hourly_and_a_new_outage_pages_again(cfg, tmp_path):
    clock = FixedClock(float(k.m5(cfg)["time"][30000]))
    inner = k.paper_broker(cfg, tmp_path / "paper.sqlite", clock)
    svc = k.service(cfg, tmp_path, clock, broker=k.FlakyBroker(inner))
    got = k.collect_alerts(svc, "telegram")
    await svc.start(monitor=False)
    await svc.monitor.run_cycle()

    async def cycles(n):
        for _ in range(n):
            clock.advance(cfg.monitor.interval_seconds + 15)  # the interval plus the reconnect retries
            rep = await svc.monitor.run_cycle()
        await svc.alerts.drain()
        return rep

    def pages(kind):
        return len([a for a in got if a.kind == kind])

    svc.broker.down, svc.broker.connect_failures = True, 10_000
    rep = await cycles(6)  # 30 minutes down
    assert not rep.connected and not svc.monitor.connected
    assert pages("connection_lost") == 1
    clock.advance(REMINDER_SECONDS)
    await cycles(1)
    assert pages("connection_lost") == 2  # still down an hour later: one reminder

    svc.broker.connect_failures = 0
    rep = await cycles(1)
    assert rep.connected and svc.monitor.connected
    svc.broker.down, svc.broker.connect_failures = True, 10_000
    await cycles(2)  # a new outage right after the restore is news again
    assert pages("connection_lost") == 3
    svc.store.close()
    inner.close()
