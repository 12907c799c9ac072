"""Discord delivery under simcord: long lists arrive whole as several follow-ups, and a button tap is
acknowledged (deferred) before a slow broker is even asked, so Discord's 3-second rule holds."""
from __future__ import annotations

import time

from bot_helpers import discord_world, journal_closed_trades

from bot.discord_bot import MAX_TEXT


def _callbacks(env) -> list[int]:
    """Interaction callback types sent so far (5/6 = deferred, 4/7 = immediate answer)."""
    return [(e.json or {}).get("type") for e in env.http_requests if e.path.endswith("/callback")]


async def test_long_trade_list_arrives_whole_in_several_followups(tmp_path):
    async with discord_world(tmp_path) as (env, bot, router, service, clock, desk, alerts, trader, viewer, _):
        journal_closed_trades(service.store, 50)
        expected = (await router.handle_text("/trades 50", trader.id)).text
        assert len(expected) > 2 * MAX_TEXT
        before = len(desk.history())
        await trader.slash(desk, "trades", n=50)
        new = sorted(desk.history()[: len(desk.history()) - before], key=lambda m: m.id)
        texts = [m.content for m in new]
        assert len(texts) >= 3 and all(len(t) <= MAX_TEXT for t in texts)
        assert "\n".join(texts) == expected
        assert not any(t.endswith("…") for t in texts)


async def test_approve_is_deferred_before_a_slow_broker_fills(tmp_path):
    async with discord_world(tmp_path) as (env, bot, router, service, clock, desk, alerts, trader, viewer, _):
        r = await trader.slash(desk, "scalp", symbol="XAUUSDc")
        card = r.response
        approve = next(c.custom_id for row in card.message.components for c in row.children
                       if c.custom_id.startswith("moneybot:a:"))
        real = service.broker.market_order
        seen: list[list[int]] = []

        def slow_market_order(request):
            seen.append(_callbacks(env))  # what Discord had been told when the order started
            time.sleep(1.5)  # a slow broker: the tap must not be left unanswered meanwhile
            return real(request)

        service.broker.market_order = slow_market_order
        n = len(_callbacks(env))
        res = await trader.click(card.message, custom_id=approve)
        assert res.deferred
        assert len(seen) == 1 and seen[0][n:] == [6]  # deferred (type 6) before the broker was called
        edited = next(m for m in desk.history() if m.id == card.id)
        assert "✅ Executed at" in edited.content and edited.components == []
        assert len(service.broker.positions()) == 1
