"""Second review: the MT5 server clock's offset across the November US DST switch.

Most MT5 servers run New York + 7 h: UTC+3 in summer, UTC+2 after the first Sunday of November. The
learned offset only ever grew (a stale quote under-estimates it), so a bot running through the switch
kept UTC+3 all winter: every quote, bar and deal read an hour older than it was, the candles looked
65 minutes stale and the analysis blocked every trade until a restart. A smaller offset is now taken
once quotes keep arriving at it with their server time moving on (a frozen quote cannot do that).
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from core.brokers.mt5.convert import ServerOffset

NY = ZoneInfo("America/New_York")


def server_time(utc: float) -> float:
    """NY local + 7 h as naive epoch seconds (what the terminal stamps quotes with)."""
    local = datetime.fromtimestamp(utc, NY).replace(tzinfo=None) + timedelta(hours=7)
    return local.replace(tzinfo=UTC).timestamp()


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_a_live_feed_through_the_november_switch_moves_the_offset_to_utc_plus_2():
    off = ServerOffset(None)
    t = utc("2025-11-02T05:00")  # BTC quotes every 10 s through Sunday 06:00 UTC (NY 02:00 EDT -> 01:00 EST)
    while t < utc("2025-11-02T05:59"):
        off.learn(server_time(t) + 0.4, t)
        t += 10
    assert off.seconds == 3 * 3600
    while t < utc("2025-11-02T06:15"):
        off.learn(server_time(t) + 0.4, t)
        t += 10
    assert off.seconds == 2 * 3600, "still UTC+3 a quarter of an hour after the switch"


def test_a_frozen_quote_an_hour_old_does_not_lower_the_offset():
    off = ServerOffset(None)
    last = utc("2025-07-10T20:59:30")  # gold's last quote before the daily break, summer (UTC+3)
    off.learn(server_time(last), last)
    assert off.seconds == 3 * 3600
    frozen = server_time(last)
    t = last + 3600 - 60
    while t < last + 3600 + 120:  # an hour later the same quote reads as UTC+2 for a few minutes
        off.learn(frozen, t)
        t += 5
    assert off.seconds == 3 * 3600
