"""Telegram delivery through the real PTB stack and the loopback Bot API stand-in: long lists arrive
whole (split at line boundaries, keyboard on the last part) and a slow tap is answered before it ends."""
from __future__ import annotations

import asyncio
import time

import pytest
from bot_helpers import TRADER, VIEWER, journal_closed_trades, start_core
from fakes.bot_api_server import BotApiServer

from bot.replies import Button, Reply
from bot.runner import make_router
from bot.telegram_bot import MAX_TEXT, WORKING, TelegramFrontEnd

TOKEN = "123456:TEST-token-not-real-aaaaaaaaaaaaaaaaaaaaaaa"


@pytest.fixture
async def tg(tmp_path):
    api = await BotApiServer(token=TOKEN).start()
    service, clock = await start_core(tmp_path)
    router = make_router(service, service.cfg, chart_dir=tmp_path / "charts")
    # answer_within is shortened so the test is quick; the product default is ~1 s
    fe = TelegramFrontEnd(router, TOKEN, base_url=api.base_url, base_file_url=api.base_file_url,
                          alert_chat_ids=[TRADER], poll_timeout=1, answer_within=0.3)
    await fe.start()
    try:
        yield api, service, clock, fe
    finally:
        await fe.stop()
        await service.stop()
        await api.stop()


def _to(api, chat_id, after=0):
    return [c for c in api.sent("sendMessage")[after:] if c.params["chat_id"] == chat_id]


async def test_long_trade_list_arrives_whole_in_several_messages(tg):
    api, service, clock, fe = tg
    journal_closed_trades(service.store, 50)
    expected = (await fe.router.handle_text("/trades 50", TRADER)).text
    assert len(expected) > MAX_TEXT  # the point of the test: longer than one Telegram message

    api.push_text("/trades 50", TRADER)
    parts = await api.wait_for(lambda a: (lambda m: m if m and "#500000 " in m[-1].params["text"] else None)(
        _to(a, TRADER)))
    texts = [c.params["text"] for c in parts]
    assert len(texts) >= 2 and all(len(t) <= MAX_TEXT for t in texts)
    assert "\n".join(texts) == expected  # nothing cut, nothing repeated, split between lines
    assert not any(t.endswith("…") for t in texts)
    for i in range(50):
        assert sum(f"#{500000 + i} " in t for t in texts) == 1


async def test_keyboard_rides_on_the_last_part(tg):
    api, service, clock, fe = tg
    lines = [f"line {i:03d} " + "x" * 60 for i in range(150)]
    buttons = [[Button("Yes", "x:close"), Button("No", "x:close")]]
    await fe.send(TRADER, Reply(text="\n".join(lines), buttons=buttons))
    sent = _to(api, TRADER)
    assert len(sent) >= 3
    assert [bool(c.params.get("reply_markup")) for c in sent] == [False] * (len(sent) - 1) + [True]
    assert "\n".join(c.params["text"] for c in sent) == "\n".join(lines)


def _slow_orders(service, api, seen):
    """The broker's order call blocks until Telegram has been told something about the tap (10 s max),
    then fills for real: the tap must be answered while the order is still in flight."""
    real = service.broker.market_order

    def market_order(request):
        deadline = time.monotonic() + 10
        while not api.sent("answerCallbackQuery") and time.monotonic() < deadline:
            time.sleep(0.02)
        seen.append([c.params.get("text") for c in api.sent("answerCallbackQuery")])
        time.sleep(0.3)  # still busy a moment after the answer: the edit must come after it
        return real(request)

    service.broker.market_order = market_order


async def _card(api, user=TRADER):
    api.push_text("/scalp XAUUSDc", user)
    cards = await api.wait_for(lambda a: [c for c in _to(a, user) if c.params.get("reply_markup")])
    msg = next(m for m in api.messages.values()
               if m["chat"]["id"] == user and m.get("reply_markup") == cards[-1].params["reply_markup"])
    return cards[-1], msg


async def test_slow_approve_is_answered_early_and_the_card_gets_the_outcome(tg):
    api, service, clock, fe = tg
    seen: list = []
    _slow_orders(service, api, seen)
    card, msg = await _card(api)
    approve = card.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    api.push_callback(approve, TRADER, msg)
    edit = (await api.wait_for(lambda a: a.sent("editMessageText"), timeout=15))[-1]

    assert seen == [[WORKING]]  # answered with the short toast while the broker was still busy
    answers = api.sent("answerCallbackQuery")
    assert [a.params.get("text") for a in answers] == [WORKING]  # a query is answered once, never twice
    assert answers[0].at < edit.at
    assert "✅ Executed at" in edit.params["text"] and edit.params["text"].startswith(card.params["text"])
    assert "reply_markup" not in edit.params
    assert len(service.broker.positions()) == 1


async def test_fast_tap_keeps_its_outcome_toast(tg):
    api, service, clock, fe = tg
    card, msg = await _card(api)
    reject = card.params["reply_markup"]["inline_keyboard"][0][1]["callback_data"]
    api.push_callback(reject, TRADER, msg)
    await api.wait_for(lambda a: a.sent("editMessageText"))
    answers = [a.params.get("text", "") for a in api.sent("answerCallbackQuery")]
    assert len(answers) == 1 and answers[0].startswith("✖") and WORKING not in answers


async def test_late_refusal_goes_into_the_card_and_keeps_the_buttons(tg):
    """A notice that would have been a pop-up arrives after the toast was spent: it is written into the
    card instead (nobody would see it otherwise), and the card's buttons stay for the traders."""
    api, service, clock, fe = tg
    card, msg = await _card(api)
    real = fe.router.handle_callback

    async def slow_callback(payload, user_id):
        await asyncio.sleep(0.8)
        return await real(payload, user_id)

    fe.router.handle_callback = slow_callback
    approve = card.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    api.push_callback(approve, VIEWER, msg)  # a viewer may not approve: a refusal, decided late
    edit = (await api.wait_for(lambda a: a.sent("editMessageText"), timeout=10))[-1]
    assert [a.params.get("text") for a in api.sent("answerCallbackQuery")] == [WORKING]
    assert "Sorry" in edit.params["text"].split("\n\n— ", 1)[1]
    assert edit.params["reply_markup"] == card.params["reply_markup"]
    assert service.broker.positions() == []
