"""Second review: the news blackout at the moment the order goes out (real XAUUSDc bars, paper replay).

The blackout (30 minutes before to 30 after a high-impact release of the symbol's currencies) was only
checked when the analysis proposed the trade. On the paper replay a proposal stays open for 120 real
seconds, two market hours at 60x, so a card shown well before a release could be approved minutes
before it and the order went out into the release.
"""
from __future__ import annotations

import json

import lifecycle_helpers as k

from core.brokers.paper.feed import AcceleratedClock
from core.domain.clock import FixedClock
from core.domain.models import ProposalState

SYMBOL = "XAUUSDc"
NEAR = 1_746_003_600.0  # 2025-04-30 09:00 UTC


def _calendar(tmp_path, at: float, currency: str) -> str:
    from datetime import UTC, datetime

    when = datetime.fromtimestamp(at, UTC).isoformat()
    path = tmp_path / "calendar.json"
    path.write_text(json.dumps([{"title": "Non-Farm Employment Change", "country": currency, "date": when,
                                 "impact": "High"}]), encoding="utf-8")
    return str(path)


async def _approve_15_market_minutes_later(tmp_path, event_in_minutes: float, currency: str):
    start = k.common_time(k.config(), (SYMBOL,), near=NEAR)
    cfg = k.config({"news": {"calendar_path": _calendar(tmp_path, start + event_in_minutes * 60, currency)}})
    wall = FixedClock(1_800_000_000.0)
    clock = AcceleratedClock(start, speed=60.0, wall=wall)
    svc, _, inner = await k.paper_service(cfg, tmp_path, clock, wrap=None)
    _, props = await svc.propose(SYMBOL)  # 40 minutes before the release: outside the blackout
    wall.advance(15)  # the trader taps Approve 15 s later: 15 market minutes at 60x
    out = await svc.approve(props[0].id, k.TRADER)
    svc.store.close()
    inner.close()
    return out, props[0], inner


async def test_an_approval_inside_the_blackout_is_not_sent(tmp_path):
    out, p, inner = await _approve_15_market_minutes_later(tmp_path, 40, "USD")
    assert not out.ok, "an order went out 25 minutes before a high-impact USD release"
    assert "Non-Farm" in out.message and "25 minutes" in out.message, out.message
    assert out.state is ProposalState.FAILED


async def test_news_of_other_currencies_does_not_block(tmp_path):
    out, _, _ = await _approve_15_market_minutes_later(tmp_path, 40, "JPY")
    assert out.ok, out.message
