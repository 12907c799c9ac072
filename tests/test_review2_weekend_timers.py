"""Second review: the time limits of a trade held over a weekend (real XAUUSDc bars, paper broker).

`max_minutes_in_trade` (240) and `stall_minutes` (90) counted wall-clock minutes. A scalp opened on
Friday evening ran out of time while the market was shut: the monitor tried to close it all weekend
(paging "EXIT FAILED ... market closed"), then closed it at Monday's first price as "open 3000 minutes"
or "stalled: price still next to the entry" although the fade had had 80 minutes of market to come.
The limits now count the minutes the market was open (a pause in quotes of 2 h or more is the market
closed; the daily one-hour break still counts).
"""
from __future__ import annotations

from datetime import UTC, datetime

import lifecycle_helpers as k
import pytest

from core.domain.clock import FixedClock
from core.domain.models import Direction
from core.exits.rules import market_minutes

SYMBOL = "XAUUSDc"


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


FRIDAY = utc("2025-01-10T20:40")  # the week's last bar opens at 21:55 UTC, the next at Sunday 23:00


@pytest.fixture(scope="module")
def cfg():
    return k.config()


async def test_a_trade_opened_on_friday_evening_keeps_its_market_time_over_the_weekend(cfg, tmp_path):
    clock = FixedClock(FRIDAY)
    inner = k.paper_broker(cfg, tmp_path / "paper.sqlite", clock)
    inner.connect()
    live = k.LiveAnalyser(inner, clock, Direction.LONG, risk_atr=8.0)

    def wide_range(symbol):  # the real range, widened so that only the time limits can end the trade
        a = live(symbol)
        r = a.range.model_copy(update={"range_high": a.range.range_high + 100, "range_low": a.range.range_low - 100})
        return a.model_copy(update={"range": r})

    svc = k.service(cfg, tmp_path, clock, broker=inner, analyser=wide_range)
    await svc.start(monitor=False)
    (ticket,) = await k.open_trades(svc, SYMBOL)
    kinds = []
    for when in ("2025-01-10T21:30", "2025-01-11T12:00", "2025-01-12T23:05"):  # Fri, Sat, Monday's open
        inner.advance_to(utc(when))
        rep = await svc.monitor.run_cycle()
        kinds += [s.kind for s in rep.signals if s.action == "close"]
        assert svc.exits.get(ticket) is not None, f"closed at {when}: {kinds}"
    assert kinds == [], kinds
    assert not [a for a in svc.notifier.sent if a.kind == "exit_failed"]  # no EXIT FAILED page all weekend
    # /status counts what the timers count: ~85 market minutes at Monday's open, not ~3,000 clock minutes
    (row,) = svc.status()
    assert 60 < row.minutes_in_trade < 120, row.minutes_in_trade
    inner.advance_to(utc("2025-01-13T01:30"))  # 80 market minutes on Friday + 150 on Monday: 230
    rep = await svc.monitor.run_cycle()
    assert "max_time_in_trade" not in [s.kind for s in rep.signals]
    inner.advance_to(utc("2025-01-13T01:45"))  # 245: past the 240-minute limit
    rep = await svc.monitor.run_cycle()
    assert "max_time_in_trade" in [s.kind for s in rep.signals]
    assert rep.exits == 1 and svc.store.closed.get(ticket) is not None
    svc.store.close()
    inner.close()


def test_market_minutes_skip_a_closed_market_but_not_the_daily_break(cfg):
    bars = k.m5(cfg, SYMBOL)
    from core.domain.models import ActiveTrade

    t = ActiveTrade(ticket=1, symbol=SYMBOL, strategy="bb_fade", direction=Direction.LONG, entry_price=1.0,
                    sl=0.9, tp=1.2, initial_sl=0.9, volume=0.01, entry_time=utc("2025-01-09T21:00"))
    now = utc("2025-01-09T23:30")  # across the daily break (21:55 -> 23:00): 150 minutes of clock
    seen = bars[(bars["time"] >= t.entry_time) & (bars["time"] + 300 <= now)]
    assert market_minutes(t, seen, now, now, 300) == pytest.approx(150)
    fri = t.model_copy(update={"entry_time": FRIDAY})
    sat = utc("2025-01-11T12:00")
    seen = bars[(bars["time"] >= FRIDAY) & (bars["time"] + 300 <= sat)]
    last_quote = float(seen["time"][-1]) + 300  # the weekend's quote is Friday's last
    assert market_minutes(fri, seen, last_quote, sat, 300) == pytest.approx(80)
    assert market_minutes(fri, seen, last_quote, sat, 0) == pytest.approx((sat - FRIDAY) / 60)  # no bars: clock
