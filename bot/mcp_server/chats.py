"""Posting an MCP proposal's card to the traders' chats of the running bot.

A chat command answers the chat it came from; an MCP proposal has no such chat, so its card (the very
Reply /scalp builds: text, chart, Approve/Reject) goes where alerts go: the console, every Telegram alert
chat and the Discord alert channel. The tap then comes back through each front end's normal button
path (`CommandRouter.handle_callback`), with its authorization: a model cannot approve.
"""
from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class ChatPoster:
    def __init__(self, runner: Any) -> None:
        self.runner = runner

    def targets(self) -> list[str]:
        r = self.runner
        out = []
        if r.console is not None:
            out.append("console")
        if r.telegram is not None and r.telegram.alert_chat_ids:
            out.append("telegram")
        if r.discord is not None and r.discord.alert_channel_id:
            out.append("discord")
        return out

    async def post(self, reply: Any) -> list[str]:
        """Send the card to every chat; the names of those that took it (a failing chat is logged)."""
        r, done = self.runner, []
        if r.console is not None:
            r.console.show(reply)
            done.append("console")
        if r.telegram is not None and r.telegram.alert_chat_ids:
            try:
                for chat_id in r.telegram.alert_chat_ids:
                    await r.telegram.send(chat_id, reply)
                done.append("telegram")
            except Exception as e:  # noqa: BLE001 - the other chats still get it
                log.warning("MCP proposal card to Telegram failed: %s", type(e).__name__)
        if r.discord is not None and r.discord.alert_channel_id:
            try:
                await _discord_post(r.discord, reply)
                done.append("discord")
            except Exception as e:  # noqa: BLE001
                log.warning("MCP proposal card to Discord failed: %s", type(e).__name__)
        return done


async def _discord_post(client: Any, reply: Any) -> None:
    from bot.discord_bot import message_parts

    channel = client.get_channel(client.alert_channel_id) or await client.fetch_channel(client.alert_channel_id)
    for kwargs in message_parts(reply):
        await channel.send(**kwargs)
