"""Second review: hourly reminders on an accelerated paper replay (`moneybot run`, 60x by default).

A condition re-reported every cycle (broker outage, an exit the closed market refuses, a broken range
that cannot be closed yet) pages once and then at most hourly. The hour was measured on the replay
clock: at 60x the trader was paged every wall minute, e.g. ~50 "EXIT FAILED" pages for one replayed
weekend. Like the proposal expiry, a reminder interval is human time.
"""
from __future__ import annotations

import lifecycle_helpers as k

from core.brokers.paper.feed import AcceleratedClock
from core.domain.clock import FixedClock
from core.ops.notify import REMINDER_SECONDS, Notifier


def _page(n: Notifier):
    return n.alert("exit_failed", "high", "EXIT FAILED - XAUUSDc ticket 7", "market closed", symbol="XAUUSDc",
                   ticket=7, dedup_key="exit_failed:7", remind_after=REMINDER_SECONDS)


def test_a_reminder_waits_an_hour_of_wall_time_on_a_fast_replay():
    wall = FixedClock(1_800_000_000.0)
    n = Notifier(k.config(), clock=AcceleratedClock(1_746_003_600.0, speed=60.0, wall=wall))
    assert _page(n) is not None
    pages = 0
    for _ in range(50):  # 50 wall minutes: 50 replay hours
        wall.advance(60)
        pages += _page(n) is not None
    assert pages == 0, f"{pages} reminders in 50 wall minutes"
    wall.advance(600)
    assert _page(n) is not None  # an hour of wall time later: reminded


def test_live_clock_reminds_hourly():
    clock = FixedClock(1_746_003_600.0)
    n = Notifier(k.config(), clock=clock)
    assert _page(n) is not None
    clock.advance(REMINDER_SECONDS - 1)
    assert _page(n) is None
    clock.advance(1)
    assert _page(n) is not None
