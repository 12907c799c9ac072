"""Review: roles on button taps, through the shared command layer every adapter uses."""
from __future__ import annotations

import pytest

from bot.commands import CommandRouter
from core.config.loading import load_config
from core.trading.authz import Authorizer

TRADER, VIEWER = 11, 22


class AuthOnly:
    def __init__(self) -> None:
        self.authz = Authorizer([TRADER], [VIEWER])

    def authorize(self, user_id, action):
        return self.authz.check(user_id, action)


@pytest.mark.parametrize("payload", ["x:emergency", "x:close"])
async def test_viewer_cannot_cancel_a_traders_confirmation(payload):
    # a Cancel tap edits the trader's confirmation away (buttons gone); in a shared group a viewer
    # must not be able to wipe a trader's pending /emergency or /close
    router = CommandRouter(AuthOnly(), load_config())
    r = await router.handle_callback(payload, VIEWER)
    assert r.kind == "refusal" and not r.edit
    r = await router.handle_callback(payload, TRADER)
    assert r.edit and r.text == "Cancelled."
