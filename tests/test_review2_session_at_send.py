"""Second review: the session rule at the moment the order goes out (real XAUUSDc bars, paper replay).

The analysis only proposes inside the configured sessions (London, New York, Asia; gold not outside
them), but the order went out whenever the trader approved. On the 60x paper replay a proposal stays
open for two market hours, so a card from the last hour of New York could be approved after the
session had closed, into the thin evening market the session rule exists to avoid.
"""
from __future__ import annotations

from datetime import UTC, datetime

import lifecycle_helpers as k
import pytest

from core.brokers.paper.feed import AcceleratedClock
from core.domain.clock import FixedClock
from core.domain.models import ProposalState

SYMBOL = "XAUUSDc"


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def cfg():
    return k.config({"execution": {"max_entry_slippage_pct": 2.0}})  # the price check is not under test


async def _approve_after(cfg, tmp_path, start: str, wall_seconds: float):
    wall = FixedClock(1_800_000_000.0)
    clock = AcceleratedClock(utc(start), speed=60.0, wall=wall)
    svc, _, inner = await k.paper_service(cfg, tmp_path, clock, wrap=None, risk_atr=10.0)
    _, props = await svc.propose(SYMBOL)
    wall.advance(wall_seconds)  # 1 wall second = 1 market minute
    out = await svc.approve(props[0].id, k.TRADER)
    positions = inner.positions()
    svc.store.close()
    inner.close()
    return out, positions


async def test_an_approval_after_the_session_closed_is_not_sent(cfg, tmp_path):
    # New York (08:00-17:00 EDT) closes at 21:00 UTC; at 22:30 UTC gold trades but no session is open
    out, positions = await _approve_after(cfg, tmp_path, "2025-04-30T20:40", 110)
    assert positions == [], "the order went out after the New York session had closed"
    assert not out.ok and "session" in out.message.lower(), out.message
    assert out.state is ProposalState.FAILED


async def test_an_approval_inside_the_session_is_sent(cfg, tmp_path):
    out, positions = await _approve_after(cfg, tmp_path, "2025-04-30T14:00", 30)
    assert out.ok, out.message
    assert len(positions) == 1
