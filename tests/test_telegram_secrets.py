"""A revoked Telegram token at start-up: PTB's InvalidToken says "The token `<token>` was rejected" and
PTB logs its Bot API URL (`.../bot<token>`) at DEBUG; neither the log nor the console chat may show it."""
from __future__ import annotations

import asyncio
import io
import logging

from bot_helpers import TRADER, start_core
from fakes.bot_api_server import BotApiServer

from bot.runner import Runner
from core.config.settings import Secrets

TOKEN = "555666777:REVOKED-token-never-shown-eeeeeeeeeeeeeeeeeee"


async def test_rejected_token_is_never_logged_or_shown(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    api = await BotApiServer(token=TOKEN).start()
    api.fail("getMe", status=401, description="Unauthorized", times=5)
    service, clock = await start_core(tmp_path)
    await service.stop()
    secrets = Secrets(_env_file=None, telegram_token=TOKEN, trader_user_ids=[TRADER])
    out = io.StringIO()
    runner = Runner(service, service.cfg, secrets, stdin=io.StringIO("/status\n"), stdout=out,
                    chart_dir=tmp_path / "charts",
                    telegram_kwargs={"base_url": api.base_url, "base_file_url": api.base_file_url, "poll_timeout": 1})
    try:
        assert await asyncio.wait_for(runner.run(), 60) == 0
    finally:
        await api.stop()
    assert "Telegram rejected the token (InvalidToken): set MONEYBOT_TELEGRAM_TOKEN" in out.getvalue()
    assert "No open range scalps." in out.getvalue()
    handler = logging.getLogger().handlers[0]
    shown = [handler.format(r) for r in caplog.records]
    secret = TOKEN.split(":")[1]
    assert shown and not [s for s in shown if secret in s]
    assert secret not in out.getvalue()
