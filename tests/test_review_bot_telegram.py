"""Review: the Telegram adapter (real PTB against the loopback Bot API stand-in) on failure paths."""
from __future__ import annotations

import asyncio

import pytest
from fakes.bot_api_server import BotApiServer

from bot.replies import Reply
from bot.telegram_bot import TelegramFrontEnd
from core.alerts import RangeScalpingAlerts
from core.clock import FixedClock
from core.config import load_config
from core.models import Alert

TOKEN = "123456:TEST-token-not-real-aaaaaaaaaaaaaaaaaaaaaaa"
GOOD, BLOCKED, FLAKY = 1001, 1002, 1003


class AlertOnlyRouter:
    async def alert_reply(self, alert):
        return Reply(text=f"{alert.title}: {alert.text}")


class PerChatApi(BotApiServer):
    """sendMessage to BLOCKED is always refused (the trader never pressed Start); FLAKY fails once."""

    flaky_left = 1

    async def _m_sendMessage(self, p, f):
        chat = int(p["chat_id"])
        if chat == BLOCKED:
            return self._error(403, "Forbidden: bot can't initiate conversation with a user")
        if chat == FLAKY and self.flaky_left > 0:
            self.flaky_left -= 1
            return self._error(500, "Internal Server Error")
        return await super()._m_sendMessage(p, f)


@pytest.fixture
async def api():
    server = await PerChatApi(token=TOKEN).start()
    yield server
    await server.stop()


async def test_alert_retry_resends_only_to_the_chats_that_failed(api):
    # alert chats default to every trader's private chat: one trader who never started the bot, or one
    # 500, must not make core's retry deliver the same alert again and again to everyone else
    fe = TelegramFrontEnd(AlertOnlyRouter(), TOKEN, base_url=api.base_url, base_file_url=api.base_file_url,
                          alert_chat_ids=[GOOD, BLOCKED, FLAKY], rate_limit=False)
    await fe.app.initialize()
    try:
        slept: list[float] = []

        async def no_wait(s):
            slept.append(s)

        alerts = RangeScalpingAlerts(load_config(), clock=FixedClock(1_700_000_000), sleep=no_wait)
        alerts.register_sink("telegram", fe.on_alert)
        alerts.send(Alert(kind="exit", severity="high", title="Closed #7", text="time stop", created_at=1_700_000_000))
        await asyncio.wait_for(alerts.drain(), 10)
        sent = [int(c.params["chat_id"]) for c in api.calls if c.method == "sendMessage"]
        by_chat = {chat: sent.count(chat) for chat in (GOOD, FLAKY)}
        assert by_chat[GOOD] == 1, by_chat  # exactly once, whatever happened to the other chats
        assert by_chat[FLAKY] == 2  # its 500 was retried, once
        assert len(slept) == 1  # a chat that refuses us for good is not retried with backoff
        assert alerts.results[-1].ok
        await alerts.close()
    finally:
        await fe.app.shutdown()
