"""Ctrl-C / SIGTERM while a Discord slash command is still working: `close()` stops it cleanly.

discord.py's `close()` neither waits for nor cancels the tasks running slash commands: a `/backtest`
kept burning CPU after the gateway had gone, and its progress message stayed at "50 %" for ever.
"""
from __future__ import annotations

import asyncio

from bot_helpers import discord_world
from test_telegram_shutdown import HeldAtHalfway

from bot.progress import Cancelled


def _original_edits(env, since: int = 0) -> list[str]:
    return [(e.json or {}).get("content", "") for e in env.http_requests[since:]
            if e.method == "PATCH" and e.path.endswith("/messages/@original")]


async def test_close_cancels_a_running_backtest_and_says_so(tmp_path):
    async with discord_world(tmp_path) as (env, bot, router, service, clock, desk, alerts, trader, viewer, _):
        router.backtest.min_interval = 0.0
        held = HeldAtHalfway()
        router.backtest.runner = held
        slash = asyncio.create_task(trader.slash(desk, "backtest", symbol="XAUUSDc", days=3))
        try:
            assert await asyncio.to_thread(held.reached.wait, 30)
            await asyncio.wait_for(bot.close(), 5)
        finally:
            held.release.set()
        await asyncio.wait([slash], timeout=30)
        for _ in range(200):
            if held.ended:
                break
            await asyncio.sleep(0.05)
        assert held.ended == ["cancelled"]  # the worker stopped at its next progress report
        edits = _original_edits(env)
        assert edits[0].startswith("⏳ Backtesting XAUUSDc") and edits[-1] == "❌ Backtest XAUUSDc stopped."
        # simcord reports what the abandoned worker thread raised: exactly the stop we asked for
        assert [type(e) for e in env.errors] == [Cancelled]
