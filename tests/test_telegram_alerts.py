"""Telegram alert delivery on the real core's alert layer, through real PTB and the Bot API stand-in."""
from __future__ import annotations

import asyncio

from bot_helpers import TRADER, analysis_from, real_candles
from fakes.bot_api_server import BotApiServer

from bot.runner import make_router
from bot.telegram_bot import TelegramFrontEnd
from core.config.loading import load_config
from core.domain.clock import FixedClock
from core.domain.models import Alert
from core.ops.alerts import RangeScalpingAlerts

TOKEN = "123456:TEST-token-not-real-aaaaaaaaaaaaaaaaaaaaaaa"


class _Candles:
    """The chart's bars: the real XAUUSDc M5 file (what the PaperBroker would serve)."""

    async def __call__(self, symbol, tf, n):
        return real_candles(symbol, tf)[-n:]


async def test_retried_alert_does_not_send_its_chart_twice(tmp_path):
    # the chart went out, then the text hit a 500: core's retry sent the chart again, so a trader saw
    # the same range chart twice (three times on a second failure) above a single alert text
    api = await BotApiServer(token=TOKEN).start()
    cfg = load_config()
    router = make_router(None, cfg, chart_dir=tmp_path)
    router._candles = _Candles()
    fe = TelegramFrontEnd(router, TOKEN, base_url=api.base_url, base_file_url=api.base_file_url,
                          alert_chat_ids=[TRADER], rate_limit=False)
    await fe.app.initialize()
    try:
        async def no_wait(_s):
            return None

        candles = real_candles()
        now = float(candles["time"][-1])
        alerts = RangeScalpingAlerts(cfg, clock=FixedClock(now), sleep=no_wait)
        alerts.register_sink("telegram", fe.on_alert)
        api.fail("sendMessage", status=500, times=2)
        alerts.send(Alert(kind="range_invalidated", severity="high", title="RANGE BROKEN", symbol="XAUUSDc",
                          text="XAUUSDc range broke above its high", range_data=analysis_from(candles).range,
                          created_at=now))
        await asyncio.wait_for(alerts.drain(), 20)
        assert alerts.results[-1].ok and alerts.results[-1].attempts == 3
        photos = api.sent("sendPhoto")
        assert len(photos) == 1 and photos[0].files["photo"].startswith(b"\x89PNG")
        texts = [c.params["text"] for c in api.sent("sendMessage") if c.params["chat_id"] == TRADER]
        assert len(texts) == 1 and "range broke above its high" in texts[0]
        await alerts.close()
    finally:
        await fe.app.shutdown()
        await api.stop()
