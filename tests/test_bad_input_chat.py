"""Chat commands typed on phones: invisible characters, full-width letters, commands that do not exist
but a trader would try, numbers out of range. Each answer says what to type instead; nothing is ordered."""
from __future__ import annotations

from bot_helpers import TRADER, start_core

from bot.commands import CommandRouter


async def test_symbols_with_invisible_or_full_width_characters_are_read_as_typed(tmp_path):
    service, clock = await start_core(tmp_path)
    router = CommandRouter(service, service.cfg)
    say = lambda text: router.handle_text(text, TRADER)  # noqa: E731
    try:
        # a zero-width space or a direction mark pasted with the symbol answered
        # "I don't know the symbol 'XAUUSDc'. Did you mean XAUUSDc?"
        for text in ("/config XAUUSDc\u200b", "/config \u202aXAUUSDc\u202c", "/config \ufeffxauusdc",
                     "/config ＸＡＵＵＳＤｃ"):
            r = await say(text)
            assert r.text.startswith("⚙️ Config for XAUUSDc · version "), (text, r.text)
        r = await say("/scalp btcusdc\u200b")
        assert r.text.startswith("BTCUSDc M5 · "), r.text
        # still unknown after the clean-up: the echo is the cleaned text, with a suggestion
        r = await say("/config xauusd\u200b")
        assert r.text == "I don't know the symbol 'xauusd'. Did you mean XAUUSDc?"
        assert service.broker.positions() == [] and service.status() == []
    finally:
        await service.stop()


async def test_commands_a_trader_would_try_point_to_the_right_thing(tmp_path):
    service, clock = await start_core(tmp_path)
    router = CommandRouter(service, service.cfg)
    say = lambda text: router.handle_text(text, TRADER)  # noqa: E731
    try:
        _, props = await service.propose("XAUUSDc")
        for cmd in (f"/approve {props[0].id}", "/approve", "/reject x"):
            r = await say(cmd)
            assert r.kind == "usage"
            assert "Approve" in r.text and "Reject" in r.text and "/scalp" in r.text, r.text
        assert service.broker.positions() == []  # typing an approval never places an order
        r = await say("/metrics 3651")
        assert r.kind == "usage" and "1 to 3650" in r.text
        r = await say("/backtest BTCUSDc 99999")
        assert r.kind == "usage" and "1 to 3650" in r.text
    finally:
        await service.stop()
