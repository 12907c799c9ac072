"""`moneybot run` with a Discord token when Discord cannot be reached at start-up (no network yet):
trading, the console and the other chats carry on, and alerts stop queueing for it while it retries."""
from __future__ import annotations

import asyncio
import io

from bot_helpers import TRADER, OpenStdin, start_core

from bot.runner import Runner
from core.config.settings import Secrets
from core.domain.models import Alert

# the shape of a Discord bot token (three dot-separated parts); discord.com is unreachable in the suite
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"


async def test_discord_down_at_start_stops_its_alert_queue_not_the_process(tmp_path):
    service, clock = await start_core(tmp_path)
    await service.stop()
    secrets = Secrets(_env_file=None, discord_token=TOKEN, discord_alert_channel_id=42, trader_user_ids=[TRADER])
    stdin = OpenStdin()
    out = io.StringIO()
    runner = Runner(service, service.cfg, secrets, stdin=stdin, stdout=out, chart_dir=tmp_path / "charts")
    task = asyncio.create_task(runner.run())
    try:
        for _ in range(500):
            if "Discord could not connect" in out.getvalue():
                break
            await asyncio.sleep(0.02)
        assert "Discord could not connect" in out.getvalue()  # and tried again later (tests/test_runner_chat_retry.py)
        assert service.alerts.sink_names == ["console"]  # no alert waits on a Discord that is not there
        service.alerts.send(Alert(kind="system_error", severity="high", title="HIGH: disk", text="disk 91% full",
                                  created_at=clock.now()))
        await asyncio.wait_for(service.alerts.drain(), 5)
        assert "disk 91% full" in out.getvalue()
        assert TOKEN not in out.getvalue()
    finally:
        runner.stop_event.set()
        stdin.feed("")
        await asyncio.wait_for(task, 30)
