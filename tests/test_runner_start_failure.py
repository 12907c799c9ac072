"""A service that fails to start (recovery raising, a store that cannot be written) must not leave the
chats running: they connect before `service.start()` now, so a failure there has a Telegram app polling
for updates, its alert sink registered and its HTTP client open, in a process about to report the error."""
from __future__ import annotations

import asyncio
import io

import pytest
from bot_helpers import TRADER, start_core
from fakes.bot_api_server import BotApiServer

from bot.runner import Runner
from core.config.settings import Secrets

TOKEN = "987654:SECRET-token-never-logged-ddddddddddddddddddd"


async def test_a_service_that_cannot_start_leaves_no_chat_running(tmp_path):
    api = await BotApiServer(token=TOKEN).start()
    service, _ = await start_core(tmp_path)
    await service.stop()  # the runner starts it again itself

    async def cannot_start(*a, **k):
        raise RuntimeError("recovery failed")

    service.start = cannot_start
    secrets = Secrets(_env_file=None, telegram_token=TOKEN, telegram_chat_id=TRADER, trader_user_ids=[TRADER])
    runner = Runner(service, service.cfg, secrets, stdin=io.StringIO(), stdout=io.StringIO(),
                    chart_dir=tmp_path / "charts",
                    telegram_kwargs={"base_url": api.base_url, "base_file_url": api.base_file_url, "poll_timeout": 1})
    try:
        with pytest.raises(RuntimeError, match="recovery failed"):
            await runner.run()
    finally:
        await api.stop()
    assert api.sent("getMe")  # it did connect before the service failed
    assert runner.telegram is None or not runner.telegram.app.running
    assert "telegram" not in service.alerts.sink_names
    left = [t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert not [n for n in left if "update_fetcher" in n or n.startswith("chat-link")], left
