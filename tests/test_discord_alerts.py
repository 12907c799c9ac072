"""Discord alert delivery when the alerts channel refuses the chart (simcord, the real core)."""
from __future__ import annotations

from bot_helpers import analysis_from, discord_world, real_candles

from core.models import Alert


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
