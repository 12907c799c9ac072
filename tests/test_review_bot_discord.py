"""Review: the Discord adapter under simcord, on attack paths the conversation tests do not walk."""
from __future__ import annotations

import simcord

from bot.commands import CommandRouter
from bot.discord_bot import MoneyBotClient
from core.config.loading import load_config
from core.trading.authz import Authorizer


class AuthOnly:
    """Enough of the service for commands that fail before reaching the core (bad symbols)."""

    def __init__(self, authz: Authorizer) -> None:
        self.authz = authz

    def authorize(self, user_id, action):
        return self.authz.check(user_id, action)


async def test_echoed_input_never_pings_everyone_or_a_role():
    # a viewer types "@everyone" as the symbol: the "unknown symbol" line echoes it into the channel;
    # the bot (which may hold Mention Everyone) must not turn that into a server-wide ping
    router = CommandRouter(None, load_config())
    bot = MoneyBotClient(router)
    async with simcord.run(bot) as env:
        guild = env.create_guild()
        desk = guild.create_text_channel("desk")
        viewer = guild.add_member(env.create_user("viewer"))
        trader = guild.add_member(env.create_user("trader"))
        router.service = AuthOnly(Authorizer([], [viewer.id]))
        for symbol in ("@everyone", "@here", f"<@{trader.id}>"):
            r = await viewer.slash(desk, "scalp", symbol=symbol)
            msg = r.response.message
            assert "I don't know the symbol" in msg.content and symbol in msg.content
            assert not msg.mention_everyone
            sent = [e.json for e in env.http_requests if "/webhooks/" in e.path and e.json and "content" in e.json]
            assert sent[-1].get("allowed_mentions") == {"parse": []}  # no user/role pings either
        r = await viewer.slash(desk, "config", symbol="@everyone")
        assert "@everyone" in r.response.message.content and not r.response.message.mention_everyone
