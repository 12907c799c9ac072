"""Issue 15.2: two strategies off one card used to both execute, opening two positions on one range.

`execution.max_positions_per_range` (default 1) caps open positions per range; the second Approve answers
why it did nothing; the re-entry rules still apply on top (a higher cap does not lift them)."""
from __future__ import annotations

from bot_helpers import TRADER, start_core

from bot.commands import CommandRouter
from core.domain.models import ProposalState


async def _two_from_one_card(tmp_path, overrides=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    service, clock = await start_core(tmp_path, overrides=overrides)
    _, props = await service.propose("XAUUSDc")
    assert len(props) >= 2, "the card must offer two strategies"
    return service, props


async def test_the_second_approve_off_one_card_says_why_it_did_nothing(tmp_path):
    service, props = await _two_from_one_card(tmp_path)
    router = CommandRouter(service, service.cfg)
    try:
        assert service.cfg.for_symbol("XAUUSDc").execution.max_positions_per_range == 1  # the shipped default
        first = await service.approve(props[0].id, TRADER)
        assert first.ok, first.message
        reply = await router.handle_callback(f"a:{props[1].id}", TRADER)
        assert "already open on this XAUUSDc range" in reply.text and "max_positions_per_range" in reply.text, \
            reply.text
        assert f"#{first.ticket}" in reply.text
        assert service.store.proposals.get(props[1].id).state is ProposalState.FAILED
        assert len(service.broker.positions()) == 1 and len(service.status()) == 1
    finally:
        await service.stop()


async def test_a_higher_cap_allows_two_and_reentry_rules_still_apply(tmp_path):
    # cap 2: both strategies go in (the re-entry budget allows one re-entry)
    service, props = await _two_from_one_card(tmp_path / "a", {"execution": {"max_positions_per_range": 2},
                                                                "exits": {"max_reentries_per_range": 1}})
    try:
        assert (await service.approve(props[0].id, TRADER)).ok
        assert (await service.approve(props[1].id, TRADER)).ok
        assert len(service.broker.positions()) == 2
    finally:
        await service.stop()
    # cap 2 but no re-entries allowed: the re-entry rule refuses the second
    service, props = await _two_from_one_card(tmp_path / "b", {"execution": {"max_positions_per_range": 2},
                                                                "exits": {"max_reentries_per_range": 0}})
    try:
        assert (await service.approve(props[0].id, TRADER)).ok
        out = await service.approve(props[1].id, TRADER)
        assert not out.ok and "re-entr" in out.message, out.message
        assert len(service.broker.positions()) == 1
    finally:
        await service.stop()

