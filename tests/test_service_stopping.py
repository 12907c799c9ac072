"""A command that reaches the service while it stops. The runner now stops the service before it closes
the chats (their last alerts must go out), so a Discord button or slash command can land in that window:
it was told "I'm still starting up ... try again in a moment" by a process that was going away."""
from __future__ import annotations

import pytest
from bot_helpers import TRADER, XAU_TRADEABLE_AT, start_core

from core.domain.exceptions import ProposalError


async def test_a_request_during_the_stop_is_told_the_bot_is_stopping_not_starting(tmp_path):
    service, _ = await start_core(tmp_path)
    await service.stop()
    with pytest.raises(ProposalError) as stopping:
        await service.propose("XAUUSDc", TRADER)
    assert "shutting down" in str(stopping.value) and "starting up" not in str(stopping.value)
    with pytest.raises(ProposalError, match="shutting down"):
        await service.emergency(TRADER)
    # started again (as a runner does with a service built before it): ready, no word of stopping
    await service.start()
    try:
        analysis, _ = await service.propose("XAUUSDc", TRADER)
        assert analysis.symbol == "XAUUSDc"
    finally:
        await service.stop()


async def test_a_request_before_the_start_still_says_starting_up(tmp_path):
    from core.app import build_for_run
    from core.config.loading import load_config
    from core.domain.clock import FixedClock
    from core.trading.authz import Authorizer

    service = build_for_run(load_config(), None, clock=FixedClock(XAU_TRADEABLE_AT), data_dir=tmp_path,
                         authorizer=Authorizer([TRADER], []))
    with pytest.raises(ProposalError, match="still starting up"):
        await service.propose("XAUUSDc", TRADER)
