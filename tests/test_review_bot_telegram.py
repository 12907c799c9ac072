"""Review: the Telegram adapter (real PTB against the loopback Bot API stand-in) on failure paths."""
from __future__ import annotations

import asyncio
import io

import pytest
from bot_helpers import OpenStdin
from fakes.bot_api_server import BotApiServer

from bot.replies import Reply
from bot.runner import Runner
from bot.telegram_bot import TelegramFrontEnd
from core.config.loading import load_config
from core.config.settings import Secrets
from core.domain.clock import FixedClock
from core.domain.models import Alert
from core.ops.alerts import RangeScalpingAlerts

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


class _Alerts:
    def register_sink(self, name, fn):
        pass

    def unregister_sink(self, name):
        pass

    def expect_sink(self, name):
        pass


class _Service:
    """Just what the Runner touches; the console and Telegram front ends are the real ones."""

    def __init__(self) -> None:
        self.cfg = load_config()
        self.alerts = _Alerts()
        self.stopped = False

    async def start(self):
        pass

    async def stop(self):
        self.stopped = True

    def authorize(self, user_id, action):
        return None


async def test_quit_typed_at_the_console_stops_the_process_even_with_telegram(api):
    # EOF keeps a bot-serving process alive (no stdin under a service manager); typing /quit is
    # the operator asking to stop: it must not leave a process running with a dead console
    secrets = Secrets(_env_file=None, telegram_token=TOKEN, telegram_chat_id=GOOD, trader_user_ids=[GOOD])
    for line, stops in (("", False), ("/quit\n", True)):
        stdin, out, service = OpenStdin(), io.StringIO(), _Service()
        runner = Runner(service, service.cfg, secrets, stdin=stdin, stdout=out,
                        telegram_kwargs={"base_url": api.base_url, "base_file_url": api.base_file_url,
                                         "poll_timeout": 1})
        task = asyncio.create_task(runner.run())
        try:
            await api.wait_for(lambda a: a.sent("getMe"))
            stdin.q.put(line)
            for _ in range(100):
                if "bye" in out.getvalue():
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)
            assert task.done() is stops, (line, out.getvalue())
        finally:
            runner.stop_event.set()
            await asyncio.wait_for(task, 20)
        assert service.stopped


class TapRouter:
    """A command layer whose every tap 'executes' (the adapter's handling of the edit is under test)."""

    async def handle_callback(self, payload, user_id):
        text = "✅ Executed at 2650.31 · ticket 77"
        return Reply(text=text, edit=True, toast=text)


async def test_failed_card_edit_still_shows_the_outcome_in_the_chat(api):
    # the trade is placed; if the card cannot be edited (5xx, or a message too old to edit) the
    # outcome must still reach the chat, not only a 2-second toast
    fe = TelegramFrontEnd(TapRouter(), TOKEN, base_url=api.base_url, base_file_url=api.base_file_url,
                          poll_timeout=1, rate_limit=False)
    await fe.start()
    try:
        card = await fe.app.bot.send_message(GOOD, "XAUUSDc card", reply_markup=None)
        msg = api.messages[(GOOD, card.message_id)]
        msg["reply_markup"] = {"inline_keyboard": [[{"text": "Approve", "callback_data": "a:abc"}]]}
        for status, description in ((500, "Internal Server Error"),
                                    (400, "Bad Request: message can't be edited")):
            n = len(api.sent("sendMessage"))
            api.fail("editMessageText", status=status, description=description)
            api.push_callback("a:abc", GOOD, msg)
            posted = await api.wait_for(lambda a, n=n: [c for c in a.sent("sendMessage")[n:]
                                                         if "ticket 77" in c.params.get("text", "")])
            assert posted[0].params["chat_id"] == GOOD
        # an edit that works needs no extra message
        n = len(api.sent("sendMessage"))
        e = len(api.sent("editMessageText"))
        api.push_callback("a:abc", GOOD, msg)
        await api.wait_for(lambda a: [c for c in a.sent("editMessageText")[e:] if c.status in (None, 200)])
        await asyncio.sleep(0.2)
        assert api.sent("sendMessage")[n:] == []
    finally:
        await fe.stop()
