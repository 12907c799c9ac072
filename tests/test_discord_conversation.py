"""The real discord.py client under simcord (offline, no token), on the real core (PaperBroker)."""
from __future__ import annotations

from bot_helpers import discord_world as world

from bot.discord_bot import MoneyBotClient


def _custom_ids(message) -> list[str]:
    return [c.custom_id for row in message.components for c in row.children]


def _deferred_first(env, since: int = 0) -> bool:
    """The first REST call answering the interaction was a defer (callback type 5 or 6)."""
    callbacks = [e for e in env.http_requests[since:] if e.path.endswith("/callback")]
    return bool(callbacks) and (callbacks[0].json or {}).get("type") in (5, 6)


async def test_slash_scalp_click_approve_and_persistent_view_after_restart(tmp_path):
    async with world(tmp_path) as w:
        await _scalp_click_restart(*w)


async def _scalp_click_restart(env, bot, router, service, clock, desk, alerts, trader, viewer, stranger):
    assert set(trader.available_commands(desk)) >= {"scalp", "status", "trades", "close", "pause", "resume",
                                                     "emergency", "metrics", "config", "health", "help", "backtest"}
    choices = await trader.autocomplete(desk, "scalp", "symbol", "usd")
    assert [c["value"] for c in choices] == ["XAUUSDc", "BTCUSDc", "EURUSDc"]
    assert [c["value"] for c in await trader.autocomplete(desk, "scalp", "symbol", "xau")] == ["XAUUSDc"]
    n = len(env.http_requests)
    r = await trader.slash(desk, "scalp", symbol="xauusdc")
    assert _deferred_first(env, n)  # deferred first: Discord's 3-second rule
    card = r.response
    assert "XAUUSDc M5" in card.content and "TRADEABLE" in card.content
    assert card.attachments and card.attachments[0].filename.endswith(".png")
    ids = _custom_ids(card.message)
    assert ids and all(i.startswith("moneybot:") for i in ids)
    approve_ids = [i for i in ids if i.startswith("moneybot:a:")]

    # restart the bot: the card posted by the old process must still work (persistent dynamic items)
    await env.restart_bot(MoneyBotClient(router, alert_channel_id=alerts.id))
    res = await trader.click(card.message, custom_id=approve_ids[0])
    assert res.deferred
    edited = _message(desk, card.id)
    assert "✅ Executed at" in edited.content and "ticket" in edited.content
    assert edited.components == []
    pid = approve_ids[0].split(":")[2]
    ticket = service.store.proposals.get(pid).ticket
    assert [p.ticket for p in service.broker.positions()] == [ticket]

    # /status is public, /help ephemeral
    r = await trader.slash(desk, "status")
    assert f"#{ticket}" in r.response.content and not r.response.ephemeral
    r = await trader.slash(desk, "help")
    assert r.response.ephemeral and "/scalp SYMBOL" in r.response.content


def _message(channel, message_id):
    return next(m for m in channel.history() if m.id == message_id)


async def test_roles_on_discord(tmp_path):
    async with world(tmp_path) as w:
        await _roles(*w)


async def _roles(env, bot, router, service, clock, desk, alerts, trader, viewer, stranger):
    r = await stranger.slash(desk, "status")
    assert "allowlist" in r.response.content and r.response.ephemeral
    r = await viewer.slash(desk, "scalp", symbol="XAUUSDc")
    card = r.response
    assert "XAUUSDc" in card.content and card.message.components == []
    r = await trader.slash(desk, "scalp", symbol="XAUUSDc")
    approve = [i for i in _custom_ids(r.response.message) if ":a:" in i][0]
    res = await viewer.click(r.response.message, custom_id=approve)
    assert res.followups and res.followups[0].ephemeral and "Sorry" in res.followups[0].content
    assert service.broker.positions() == []


async def test_http_500s_close_confirmation_and_alerts(tmp_path):
    async with world(tmp_path) as w:
        await _faults_close_alerts(*w)


async def _faults_close_alerts(env, bot, router, service, clock, desk, alerts, trader, viewer, stranger):
    # one 500 on the follow-up: the adapter retries (without the chart), the card still arrives
    env.inject_error("POST", "/webhooks/*", status=500, times=1)
    r = await trader.slash(desk, "scalp", symbol="XAUUSDc")
    assert r.response is not None and "TRADEABLE" in r.response.content
    # an outage longer than the retry: logged, nothing crashes; the next command works again
    env.inject_error("POST", "/webhooks/*", status=500, times=2)
    r = await trader.slash(desk, "health")
    assert r.response is None or r.response.content == ""
    assert env.errors == []  # no exception escaped into discord.py
    r = await trader.slash(desk, "status")
    assert r.response is not None and "No open range scalps" in r.response.content

    # reject one strategy: only its row disappears from the card
    r = await trader.slash(desk, "scalp", symbol="XAUUSDc")
    card = r.response
    ids = _custom_ids(card.message)
    rejects = [i for i in ids if ":r:" in i]
    assert len(rejects) >= 2
    await trader.click(card.message, custom_id=rejects[0])
    edited = _message(desk, card.id)
    left = _custom_ids(edited)
    assert rejects[0] not in left and rejects[1] in left and "✖" in edited.content

    # approve another, then /close with confirmation
    approve = [i for i in left if ":a:" in i][0]
    await trader.click(edited, custom_id=approve)
    ticket = service.broker.positions()[0].ticket
    r = await trader.slash(desk, "close", ticket=str(ticket))
    confirm = r.response
    assert f"#{ticket}" in confirm.content and service.broker.positions()  # nothing closed yet
    # the close alert reaches the alerts channel (alert retries after a 500 are covered on Telegram:
    # core's backoff sleeps do not mix with simcord's virtual clock)
    assert f"moneybot:c:{ticket}:{int(clock.now())}" in _custom_ids(confirm.message)
    await trader.click(confirm.message, custom_id=f"moneybot:c:{ticket}:{int(clock.now())}")
    assert service.broker.positions() == []
    assert "Closed" in _message(desk, confirm.id).content
    await service.alerts.drain()
    await env.settle()
    posted = [m.content for m in alerts.history()]
    assert any(f"#{ticket} closed" in c for c in posted)


async def test_emergency_pause_resume_with_confirmation(tmp_path):
    async with world(tmp_path) as w:
        env, bot, router, service, clock, desk, alerts, trader, viewer, stranger = w
        r = await trader.slash(desk, "emergency")
        assert "close ALL" in r.response.content
        await trader.click(r.response.message, custom_id="moneybot:x:emergency")
        assert "Cancelled." in _message(desk, r.response.id).content
        assert service.notifier.entries_blocked() is None
        r = await viewer.slash(desk, "pause")
        assert "Sorry" in r.response.content and r.response.ephemeral
        assert service.notifier.entries_blocked() is None
        r = await trader.slash(desk, "emergency")
        await trader.click(r.response.message, custom_id=f"moneybot:e:{int(clock.now())}")
        assert "Emergency stop" in _message(desk, r.response.id).content
        assert service.notifier.entries_blocked()  # new entries refused now
        r = await trader.slash(desk, "resume")
        assert service.notifier.entries_blocked() is None
        r = await trader.slash(desk, "pause")
        assert "Paused" in r.response.content or "pause" in r.response.content.lower()
        assert service.notifier.entries_blocked()
