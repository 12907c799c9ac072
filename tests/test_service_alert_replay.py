"""A crash between logging an alert and any chat answering must not lose it: the next start-up sends it.

`RangeScalpingAlerts.replay_undelivered` existed and was tested on its own, but nothing called it at
start-up, so an "EXIT FAILED" page logged a moment before a crash was never sent.
"""
from __future__ import annotations

import lifecycle_helpers as k

from core.domain.clock import FixedClock
from core.store import Store

SYMBOL = "XAUUSDc"


async def test_an_alert_a_crash_left_undelivered_is_sent_at_the_next_start(tmp_path):
    cfg = k.config({})
    clock = FixedClock(k.common_time(cfg, (SYMBOL,)))
    store = Store(tmp_path / "store.sqlite", clock)
    # the dying run: a chat was registered, the page was logged 'queued', nobody answered
    from core.ops.alerts import RangeScalpingAlerts

    dying = RangeScalpingAlerts(cfg.alerts, clock, store)
    dying.register_sink("telegram", lambda a: None)
    dying.alert_exit_failed(77, SYMBOL, "requote")
    assert [r["status"] for r in store.alerts.recent()] == ["queued"]
    store.close()

    clock.advance(120)
    svc = k.service(cfg, tmp_path, clock)
    got = []

    async def telegram(alert):
        got.append(alert)

    svc.alerts.register_sink("telegram", telegram)  # the runner connects the chats before the service starts
    await svc.start(monitor=False)
    await svc.alerts.drain()
    assert [(a.kind, a.ticket) for a in got] == [("exit_failed", 77)]
    assert svc.store.alerts.recent()[0]["status"] == "delivered"
    await svc.stop()
