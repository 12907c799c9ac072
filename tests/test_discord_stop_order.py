"""The runner's stop order (docs/architecture.md): commands stop first, running ones cancelled, then the
service stops, then the chats close. Telegram's commands were cancelled before `service.stop()`, but a
Discord slash command was only cancelled by `close()`, after it: a /backtest kept a core busy through
the monitor's stop and the alert drain, and its progress message still said it was running meanwhile."""
from __future__ import annotations

import asyncio
import io

from bot_helpers import discord_world
from test_telegram_shutdown import HeldAtHalfway

from bot.progress import Cancelled
from bot.runner import Runner
from core.config.settings import Secrets


def _original_edits(env) -> list[str]:
    return [(e.json or {}).get("content", "") for e in env.http_requests
            if e.method == "PATCH" and e.path.endswith("/messages/@original")]


async def test_a_running_slash_command_is_cancelled_before_the_service_stops(tmp_path):
    async with discord_world(tmp_path) as (env, bot, router, service, clock, desk, alerts, trader, viewer, _):
        router.backtest.min_interval = 0.0
        held = HeldAtHalfway()
        router.backtest.runner = held
        runner = Runner(service, service.cfg, Secrets(_env_file=None), stdin=io.StringIO(), stdout=io.StringIO(),
                        chart_dir=tmp_path / "charts", console=False)
        runner.discord = bot
        seen: dict[str, object] = {}
        stop_service = service.stop

        async def stop_and_look(*a, **k):
            seen["commands_running"] = sorted(t.get_name() for t in bot._commands if not t.done())
            seen["last_edit"] = (_original_edits(env) or [""])[-1]
            held.release.set()
            await stop_service(*a, **k)

        service.stop = stop_and_look
        slash = asyncio.create_task(trader.slash(desk, "backtest", symbol="XAUUSDc", days=3))
        try:
            assert await asyncio.to_thread(held.reached.wait, 30)
            await asyncio.wait_for(runner.stop(), 30)
        finally:
            held.release.set()
        await asyncio.wait([slash], timeout=30)
        for _ in range(200):
            if held.ended:
                break
            await asyncio.sleep(0.05)
        assert seen["commands_running"] == []
        assert seen["last_edit"] == "❌ Backtest XAUUSDc stopped."
        assert held.ended == ["cancelled"]
        # simcord reports what the abandoned worker thread raised: exactly the stop we asked for
        assert [type(e) for e in env.errors] == [Cancelled]
