"""Second review: re-entering a range that broke during a trade (real XAUUSDc bars, paper broker).

A trade closed by range invalidation (N closes in a row beyond an edge: the market accepted prices
outside the range) left the range as tradeable as any other: after the cooldown the same box could be
proposed and approved again, up to `max_reentries_per_range` times, fading the edges of a range the bot
itself had just declared broken.
"""
from __future__ import annotations

import lifecycle_helpers as k
import pytest

from core.domain.clock import FixedClock
from core.domain.models import Direction

SYMBOL = "XAUUSDc"
NEAR = 1_746_003_600.0  # 2025-04-30 09:00 UTC


@pytest.fixture(scope="module")
def cfg():
    return k.config({"exits": {"reentry_cooldown_minutes": 0, "max_reentries_per_range": 5,
                               "max_minutes_in_trade": 600, "stall_minutes": 600}})


async def test_a_range_closed_by_invalidation_is_not_traded_again(cfg, tmp_path):
    clock = FixedClock(k.common_time(cfg, (SYMBOL,), near=NEAR))
    inner = k.paper_broker(cfg, tmp_path / "paper.sqlite", clock)
    inner.connect()
    live = k.LiveAnalyser(inner, clock, Direction.LONG, risk_atr=6.0)
    first = live(SYMBOL)
    mid = inner.tick(SYMBOL).bid  # a tight box around the entry: the real bars leave it within a few bars
    tight = first.range.model_copy(update={"range_high": mid + 0.5, "range_low": mid - 0.5, "range_mid": mid})

    def analyser(symbol):  # today's quote and plan, on the same (first) range
        return live(symbol).model_copy(update={"range": tight})

    svc = k.service(cfg, tmp_path, clock, broker=inner, analyser=analyser)
    await svc.start(monitor=False)
    (ticket,) = await k.open_trades(svc, SYMBOL)
    for _ in range(60):
        inner.step()
        await svc.monitor.run_cycle()
        if svc.exits.get(ticket) is None:
            break
    closed = svc.store.closed.get(ticket)
    assert closed is not None and closed.exit_reason == "range_invalidated", closed
    # the card says so up front: no Approve button for the broken range, and the reason among the blocks
    analysis, props = await svc.propose(SYMBOL)
    assert props == [], "a range the bot had just declared broken was offered again"
    assert not analysis.passed
    assert [f.name for f in analysis.failures] == ["reentry"] and "broke" in analysis.failures[0].reason
    # a viewer's /scalp card gives the same verdict (it used to read the market alone: "TRADEABLE")
    from bot.runner import make_router

    router = make_router(svc, svc.cfg, chart_dir=tmp_path / "charts")
    card = await router.handle_text(f"/scalp {SYMBOL}", k.VIEWER)
    assert "NO TRADE" in card.text and "reentry:" in card.text and "broke" in card.text, card.text
    assert not card.buttons
    # a card shown before the range broke is still refused at send time
    (late,) = svc.execution.create_proposals(analyser(SYMBOL))
    out = await svc.approve(late.id, k.TRADER)
    assert not out.ok and "broke" in out.message, out.message
    assert inner.positions() == []
    # a restart remembers it (the closed journal is the source)
    svc.store.close()
    again = k.service(cfg, tmp_path, clock, broker=inner, analyser=analyser, store_name="store.sqlite")
    await again.start(monitor=False)
    analysis, props = await again.propose(SYMBOL)
    assert props == [] and "broke" in analysis.failures[0].reason
    again.store.close()
    inner.close()
