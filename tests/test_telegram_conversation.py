"""The real PTB Application against the loopback Bot API stand-in, on the real core (PaperBroker)."""
from __future__ import annotations

import asyncio

import pytest
from bot_helpers import STRANGER, TRADER, VIEWER, start_core
from fakes.bot_api_server import BotApiServer

from bot.runner import make_router
from bot.telegram_bot import TelegramFrontEnd

TOKEN = "123456:TEST-token-not-real-aaaaaaaaaaaaaaaaaaaaaaa"


# A short time stop, so the monitor itself closes the trade before the replay reaches its SL or TP.
TIME_STOP = {"exits": {"max_minutes_in_trade": 4, "stall_minutes": 3}}


@pytest.fixture
async def tg(tmp_path):
    api = await BotApiServer(token=TOKEN).start()
    service, clock = await start_core(tmp_path, overrides=TIME_STOP)
    router = make_router(service, service.cfg, chart_dir=tmp_path / "charts")
    fe = TelegramFrontEnd(router, TOKEN, base_url=api.base_url, base_file_url=api.base_file_url,
                          alert_chat_ids=[TRADER], poll_timeout=1)
    service.alerts.register_sink("telegram", fe.on_alert)
    await fe.start()
    try:
        yield api, service, clock
    finally:
        await fe.stop()
        await service.stop()
        await api.stop()


def _card(api, chat_id, after=0):
    """The latest card (a sendMessage with an inline keyboard) sent to chat_id."""
    cards = [c for c in api.sent("sendMessage")[after:] if c.params.get("chat_id") == chat_id
             and c.params.get("reply_markup")]
    return cards[-1] if cards else None


def _message(api, chat_id, text_part):
    return next((m for m in api.messages.values() if m["chat"]["id"] == chat_id and text_part in m.get("text", "")),
                None)


async def _scalp(api, user=TRADER):
    n = len(api.sent("sendMessage"))
    api.push_text("/scalp xauusdc", user)
    call = await api.wait_for(lambda a: [c for c in a.sent("sendMessage")[n:] if c.params["chat_id"] == user])
    return call[-1]


async def test_scalp_approve_monitor_exit_alert(tg):
    api, service, clock = tg
    await _scalp(api)
    photos = api.sent("sendPhoto")
    assert photos and photos[-1].files["photo"].startswith(b"\x89PNG")
    card = _card(api, TRADER)
    assert card is not None and "XAUUSDc M5" in card.params["text"] and "TRADEABLE" in card.params["text"]
    keyboard = card.params["reply_markup"]["inline_keyboard"]
    approve = keyboard[0][0]["callback_data"]
    assert approve.startswith("a:") and len(approve.encode()) <= 64
    pid = approve[2:]
    assert service.store.proposals.get(pid).state.value == "pending"  # the button names a stored proposal

    msg = _message(api, TRADER, "TRADEABLE")
    api.push_callback(approve, TRADER, msg)
    edit = (await api.wait_for(lambda a: a.sent("editMessageText")))[-1]
    assert "✅ Executed at" in edit.params["text"] and "ticket" in edit.params["text"]
    assert "reply_markup" not in edit.params  # keyboard removed once a trade is placed
    answers = api.sent("answerCallbackQuery")
    assert answers and "Executed" in answers[-1].params.get("text", "")
    ticket = service.store.proposals.get(pid).ticket
    assert ticket is not None and str(ticket) in edit.params["text"]
    positions = service.broker.positions()
    assert [p.ticket for p in positions] == [ticket]

    # /status shows it; then the replay moves on and the monitor closes the trade -> an alert arrives
    api.push_text("/status", TRADER)
    await api.wait_for(lambda a: _message(a, TRADER, f"#{ticket}"))
    clock.advance(5 * 60)
    service.monitor.wake()
    alert = await api.wait_for(
        lambda a: [c for c in a.sent("sendMessage") if c.params["chat_id"] == TRADER
                   and f"#{ticket} closed" in c.params["text"]], timeout=20)
    assert "Why: time limit" in alert[-1].params["text"]
    assert api.sent("sendPhoto")[-1].files["photo"].startswith(b"\x89PNG")  # exit alerts carry a chart
    assert service.broker.positions() == []
    closed = service.recent_trades(1)
    assert closed and closed[0].ticket == ticket


async def test_unauthorized_viewer_double_tap_expiry_and_garbage(tg):
    api, service, clock = tg
    # a stranger gets exactly one polite refusal, then silence
    api.push_text("/scalp XAUUSDc", STRANGER)
    await api.wait_for(lambda a: _message(a, STRANGER, "allowlist"))
    api.push_text("/status", STRANGER)
    api.push_text("/help", TRADER)
    await api.wait_for(lambda a: _message(a, TRADER, "MoneyBot commands"))
    assert len([c for c in api.sent("sendMessage") if c.params["chat_id"] == STRANGER]) == 1

    # a viewer sees the card but gets no buttons
    n = len(api.sent("sendMessage"))
    await _scalp(api, VIEWER)
    assert _card(api, VIEWER, n) is None
    assert any("TRADEABLE" in c.params["text"] for c in api.sent("sendMessage")[n:])

    await _scalp(api)
    card = _card(api, TRADER)
    approve = card.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    msg = _message(api, TRADER, "TRADEABLE")

    # taps from a stranger and a viewer are refused and change nothing
    # (a new stranger and the viewer get a refusal pop-up; the already-refused stranger only silence)
    for who, refused in ((STRANGER + 1, True), (VIEWER, True), (STRANGER, False)):
        k = len(api.sent("answerCallbackQuery"))
        api.push_callback(approve, who, msg)
        ans = await api.wait_for(lambda a, k=k: a.sent("answerCallbackQuery")[k:])
        if refused:
            assert ans[0].params.get("show_alert") is True and "Sorry" in ans[0].params["text"]
        else:
            assert "text" not in ans[0].params
    assert service.broker.positions() == [] and not api.sent("editMessageText")

    # garbage callback data: a clear notice, nothing placed
    for junk in ("zzz", "a:../../etc", "a:" + "x" * 70, "c:-5", "e:now", ""):
        k = len(api.sent("answerCallbackQuery"))
        api.push_callback(junk, TRADER, msg)
        ans = await api.wait_for(lambda a, k=k: a.sent("answerCallbackQuery")[k:])
        assert "not valid" in ans[0].params.get("text", "") or "find" in ans[0].params.get("text", "")
    assert service.broker.positions() == []

    # double tap: two taps in flight, exactly one position
    k = len(api.sent("answerCallbackQuery"))
    api.push_callback(approve, TRADER, msg)
    api.push_callback(approve, TRADER, msg)
    await api.wait_for(lambda a: len(a.sent("answerCallbackQuery")[k:]) >= 2)
    assert len(service.broker.positions()) == 1
    texts = [c.params.get("text", "") for c in api.sent("answerCallbackQuery")[k:]]
    assert any(t.startswith("✅ Executed") for t in texts) and any(t.startswith("ℹ️ Already handled") for t in texts)

    # an expired proposal: the card is edited to say so
    clock.advance(60)
    await _scalp(api)
    card = _card(api, TRADER)
    rows = card.params["reply_markup"]["inline_keyboard"]
    stale = rows[-1][0]["callback_data"]
    clock.advance(service.cfg.execution.proposal_expiry_seconds + 1)
    msg = [m for m in api.messages.values() if m.get("reply_markup") == card.params["reply_markup"]][-1]
    e = len(api.sent("editMessageText"))
    api.push_callback(stale, TRADER, msg)
    edit = (await api.wait_for(lambda a: a.sent("editMessageText")[e:]))[0]
    assert "expired" in edit.params["text"]
    assert len(service.broker.positions()) == 1


async def test_configured_chat_only(tmp_path):
    api = await BotApiServer(token=TOKEN).start()
    service, clock = await start_core(tmp_path)
    desk = -100123  # the configured group chat
    fe = TelegramFrontEnd(make_router(service, service.cfg), TOKEN, base_url=api.base_url,
                          base_file_url=api.base_file_url, chat_id=desk, poll_timeout=1)
    await fe.start()
    try:
        api.push_text("/help", TRADER)  # a private chat with the bot: not the configured chat
        api.push_text("/help", TRADER)
        api.push_text("hello team", TRADER, chat_id=desk)  # group chatter is not for the bot
        api.push_text("/help@SomeOtherBot", TRADER, chat_id=desk)  # nor commands for another bot
        api.push_text("/help@MoneyBot_Test", TRADER, chat_id=desk)
        await api.wait_for(lambda a: _message(a, desk, "MoneyBot commands") and _message(a, TRADER, "Sorry"))
        await asyncio.sleep(0.3)  # time for a (wrong) second refusal to show up
        private = [c.params["text"] for c in api.sent("sendMessage") if c.params["chat_id"] == TRADER]
        assert private == ["Sorry, this bot only works in its configured chat."]
        assert len([c for c in api.sent("sendMessage") if c.params["chat_id"] == desk]) == 1
    finally:
        await fe.stop()
        await service.stop()
        await api.stop()


async def test_bot_api_failures_do_not_lose_the_card(tg):
    api, service, clock = tg
    api.fail("sendPhoto", status=500, times=1)
    api.fail("sendMessage", status=429, times=1, description="Too Many Requests: retry after 1", retry_after=1)
    await _scalp(api)  # the chart failed and the card hit a flood limit once: the card still arrives
    card = _card(api, TRADER)
    assert card is not None and "TRADEABLE" in card.params["text"]
    assert api.sent("sendPhoto") == []  # the chart was lost (logged), the card was not
    assert [c.status for c in api.calls if c.method == "sendMessage"] == [429, 200]  # retried after the flood wait
    api.push_text("/help", TRADER)
    await api.wait_for(lambda a: _message(a, TRADER, "MoneyBot commands"))
