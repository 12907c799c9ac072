"""Discord alert delivery when the alerts channel refuses the chart (simcord, the real core)."""
from __future__ import annotations

from bot_helpers import analysis_from, discord_world, real_candles

from core.domain.models import Alert


async def test_alert_whose_chart_is_refused_still_arrives_as_text(tmp_path):
    # A bot role without "Attach Files" in the alerts channel answers 403 Missing Permissions to every
    # message with a chart: each of core's retries sent the chart again, so range and exit alerts never
    # reached Discord at all. (simcord checks that permission only on forwards, so the 403 is injected,
    # once: the alert must arrive on that first attempt, as text.)
    async with discord_world(tmp_path) as (env, bot, router, service, clock, desk, alerts, trader, viewer, _):
        env.inject_error("POST", "/channels/*/messages", status=403, code=50013, message="Missing Permissions")
        rng = analysis_from(real_candles()).range
        service.alerts.send(Alert(kind="range_invalidated", severity="high", title="RANGE BROKEN",
                                  text="XAUUSDc range broke above its high", symbol="XAUUSDc", range_data=rng,
                                  created_at=clock.now()))
        await service.alerts.drain()
        await env.settle()
        posted = [m for m in alerts.history() if "range broke above its high" in m.content]
        assert len(posted) == 1 and posted[0].attachments == []
        assert service.alerts.results[-1].ok and service.alerts.results[-1].attempts == 1
        # without a refusal the chart goes with the text
        service.alerts.send(Alert(kind="range_invalidated", severity="high", title="RANGE BROKEN",
                                  text="XAUUSDc range broke below its low", symbol="XAUUSDc", range_data=rng,
                                  created_at=clock.now()))
        await service.alerts.drain()
        await env.settle()
        posted = [m for m in alerts.history() if "range broke below its low" in m.content]
        assert len(posted) == 1 and [a.filename for a in posted[0].attachments][0].endswith(".png")


async def test_alert_sent_before_the_login_waits_for_it(tmp_path):
    # The runner registers the Discord sink before the service starts, so recovery's pages reach the
    # desk; the login runs meanwhile. An alert that came first failed outright (discord.py's HTTP client
    # has no session before the login) and lived on core's 3.5 s of retries only.
    import asyncio

    import simcord

    from bot.commands import CommandRouter
    from bot.discord_bot import MoneyBotClient
    from core.config.loading import load_config

    # configured (the id of a channel the test can only create once the simulated Discord is up)
    bot = MoneyBotClient(CommandRouter(None, load_config()))
    env = simcord.Env(bot)
    channel = env.create_guild().create_text_channel("alerts")  # the simulated Discord, before the login
    bot.alert_channel_id = channel.id
    early = asyncio.create_task(bot.on_alert(Alert(kind="orphan_adopted", severity="critical", title="ORPHAN ADOPTED",
                                                   text="Found XAUUSDc sell 0.01 with our magic number",
                                                   created_at=1735910700.0)))
    await asyncio.sleep(0.05)
    assert not early.done()  # waiting for the login, not failed
    await env.start()  # attach and log in
    try:
        await asyncio.wait_for(early, 10)
        await env.settle()
        assert [m.content for m in channel.history() if "ORPHAN ADOPTED" in m.content]
        assert env.errors == []
    finally:
        await env.shutdown()


async def test_failed_command_sync_does_not_take_the_desk_down(tmp_path):
    # The slash-command sync at login answers 403 Missing Access when MONEYBOT_DISCORD_GUILD_ID names a
    # guild the bot is not in, or the invite lacked the applications.commands scope. setup_hook raised,
    # the login failed, and the desk lost its alerts and the buttons of every card already posted.
    import asyncio

    import simcord

    from bot.commands import CommandRouter
    from bot.discord_bot import MoneyBotClient
    from core.config.loading import load_config

    bot = MoneyBotClient(CommandRouter(None, load_config()))
    env = simcord.Env(bot)
    channel = env.create_guild().create_text_channel("alerts")
    bot.alert_channel_id = channel.id
    env.inject_error("PUT", "/applications/*/commands", status=403, code=50001, message="Missing Access", times=None)
    await env.start()
    try:
        assert bot.is_ready()
        await asyncio.wait_for(bot.on_alert(Alert(kind="exit_failed", severity="critical", title="EXIT FAILED",
                                                  text="ticket 7 could not be closed", created_at=1735910700.0)), 10)
        await env.settle()
        assert [m.content for m in channel.history() if "EXIT FAILED" in m.content]
        assert env.errors == []
    finally:
        await env.shutdown()
