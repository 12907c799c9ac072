"""Every button MoneyBot can produce fits both platforms at its extremes (the longest ids and tickets),
and the payload a tap sends back parses to the same action: Telegram refuses callback_data over 64 bytes
(the whole keyboard, so the card would not arrive), Discord custom_ids over 100 characters."""
from __future__ import annotations

import re

from telegram import InlineKeyboardButton

from bot import confirmations
from bot.discord_bot import TEMPLATE, build_view
from bot.replies import MAX_PAYLOAD_BYTES, Button, parse_payload
from bot.telegram_bot import keyboard
from core.store.proposals import PROPOSAL_ID_LEN, new_proposal_id

MAX_TICKET = 2**63 - 1  # MT5 tickets are unsigned 64-bit; the /close parser stops at this
LATEST_STAMP = 10**12 - 1  # the confirmation parser's widest issue time (12 digits, year 33658)


def _every_payload() -> list[str]:
    pid = new_proposal_id()
    assert len(pid) == PROPOSAL_ID_LEN
    return [f"a:{pid}", f"r:{pid}", confirmations.close_payload(MAX_TICKET, LATEST_STAMP),
            confirmations.emergency_payload(LATEST_STAMP), "x:close", "x:emergency"]


def test_every_button_fits_telegram_and_discord_and_parses_back():
    payloads = _every_payload()
    rows = [[Button("✅ Approve 5 vwap_reversion short", p, "success")] for p in payloads]
    markup = keyboard(rows)
    for row, payload in zip(markup.inline_keyboard, payloads, strict=True):
        data = row[0].callback_data
        assert data == payload and len(data.encode()) <= MAX_PAYLOAD_BYTES == InlineKeyboardButton.MAX_CALLBACK_DATA
    custom_ids = [c.custom_id for p in payloads for c in build_view([[Button("x", p)]]).children]
    assert all(len(c) <= 100 and re.fullmatch(TEMPLATE, c) for c in custom_ids)
    kinds = [parse_payload(p)[0] for p in payloads]
    assert kinds == ["a", "r", "c", "e", "x", "x"]
    close = confirmations.check_close(parse_payload(payloads[2])[1], now=LATEST_STAMP, window=120)
    assert close.status == "ok" and close.ticket == MAX_TICKET
