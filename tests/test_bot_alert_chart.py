"""Exit alerts are drawn on the bars the scalp was traded on, with readable labels (real core, real data)."""
from __future__ import annotations

from bot_helpers import TRADER, start_core

from bot.chart import alert_figure
from bot.runner import candle_source, make_router
from core.domain.models import Alert


async def test_exit_alert_chart_uses_the_trading_timeframe_and_separates_labels(tmp_path):
    service, clock = await start_core(tmp_path)
    router = make_router(service, service.cfg, chart_dir=tmp_path / "charts")
    asked: list[str] = []
    fetch = candle_source(service)

    async def candles(symbol, tf, n):
        asked.append(tf)
        return await fetch(symbol, tf, n)

    router._candles = candles
    try:
        card = await router.handle_text("/scalp XAUUSDc", TRADER)
        await router.handle_callback(card.buttons[0][0].payload, TRADER)
        trade = service.exits.active_trades()[0]
        # a previous-day range lives on H1; the scalp itself was traded on M5
        rng = trade.range_data.model_copy(update={"timeframe": "H1"})
        exit_price = (trade.entry_price + trade.tp) / 2
        alert = Alert(kind="exit_executed", severity="high", title="XAUUSDc: range scalp closed", text="closed",
                      symbol="XAUUSDc", ticket=trade.ticket, created_at=clock.now(), trade=trade, range_data=rng,
                      exit_price=exit_price)
        asked.clear()
        reply = await router.alert_reply(alert)
        tf = service.cfg.for_symbol("XAUUSDc").range_detection.timeframe
        assert asked == [tf] and reply.image.startswith(b"\x89PNG")

        bars = await fetch("XAUUSDc", tf, 120)
        ax = alert_figure(bars, alert, digits=2).axes[0]
        lo, hi = ax.get_ylim()
        ys = sorted(t.get_position()[1] for t in ax.texts
                    if t.get_text().strip().split(" ")[0] in ("entry", "SL", "TP", "exit"))
        assert len(ys) == 4
        gaps = [b - a for a, b in zip(ys, ys[1:], strict=False)]
        assert min(gaps) >= 0.04 * (hi - lo)  # no label sits on another
    finally:
        await service.stop()
