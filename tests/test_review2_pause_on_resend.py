"""Second review: /pause landing while a requoted order is being re-priced (real-data paper broker).

The first review re-checks the kill switch after the retry's sleep, but the re-pricing then awaits the
broker for a fresh tick, and the resend followed without another look: a /pause (or auto-disable) that
arrived during that tick fetch still sent the order.
"""
from __future__ import annotations

import lifecycle_helpers as k
import pytest
from test_review_execution import SYMBOL, _svc

from core.brokers.base import RequoteError
from core.domain.models import ProposalState


@pytest.fixture(scope="module")
def cfg():
    return k.config()


@pytest.fixture(scope="module")
def bars(cfg):
    return k.m5(cfg, SYMBOL)


async def test_pause_while_repricing_a_requoted_order_blocks_the_resend(cfg, bars, tmp_path):
    svc, inner = await _svc(cfg, bars, tmp_path)
    _, props = await svc.propose(SYMBOL)
    paused = []

    def pause_during_the_fresh_tick():
        paused.append(svc.pause(k.TRADER, "stop now"))

    def requote():
        svc.broker.hooks["tick"] = pause_during_the_fresh_tick  # the retry's re-pricing fetch
        raise RequoteError("requote", 10004)

    svc.broker.hooks["market_order"] = requote
    out = await svc.approve(props[0].id, k.TRADER)
    assert paused, "the re-pricing tick was never fetched"
    assert inner.positions() == [], "the requoted order was resent after the pause"
    assert not out.ok and "paused" in out.message.lower()
    assert svc.store.proposals.get(props[0].id).state is ProposalState.FAILED
