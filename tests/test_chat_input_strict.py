"""Issue 15.6: chat input is refused whole when it is not what a client sends on purpose.

A callback payload with a trailing newline used to match (`$` matches before a final newline), and a
symbol with a NUL or an escape code got "Did you mean XAUUSDc?" as if it were a typo."""
from __future__ import annotations

import pytest
from bot_helpers import TRADER, start_core

from bot import confirmations
from bot.commands import CommandRouter
from bot.replies import Button, parse_payload
from core.domain.exceptions import ProposalError


@pytest.mark.parametrize("payload", ["a:abc123\n", "r:abc123\n", "c:42:1700000000\n", "e:go\n", "x:close\n"])
def test_a_payload_with_a_trailing_newline_is_refused(payload):
    assert parse_payload(payload.rstrip("\n")) is not None  # the clean one is fine
    assert parse_payload(payload) is None
    with pytest.raises(ValueError):
        Button("x", payload)


def test_confirmation_refs_with_a_trailing_newline_are_malformed():
    assert confirmations.check_close("42:100\n", 100.0, 60.0, 1.0).status == "malformed"
    assert confirmations.check_emergency("go\n", 100.0, 60.0, 1.0).status == "malformed"


async def test_control_characters_are_refused_before_symbol_matching(tmp_path):
    service, clock = await start_core(tmp_path)
    router = CommandRouter(service, service.cfg)
    try:
        for text in ("/scalp XAUUSDc\x00", "/scalp XAU\x00USDc", "/config \x1b[31mXAUUSDc", "/scalp XAUUSD\x7f",
                     "/backtest BTCUSDc\x00 30", "/scalp \x85XAUUSDc"):
            r = await router.handle_text(text, TRADER)
            assert "control characters" in r.text, (text, r.text)
            assert "Did you mean" not in r.text and "\x00" not in r.text
        # the core refuses them too, for any other front end
        for sym in ("XAUUSDc\x00", "XAU\x1bUSDc"):
            with pytest.raises(ProposalError, match="control characters"):
                service.resolve_symbol(sym)
        assert service.store.proposals.list() == []
        assert service.broker.positions() == []
        # a clean symbol still works
        r = await router.handle_text("/config XAUUSDc", TRADER)
        assert r.text.startswith("⚙️ Config for XAUUSDc"), r.text
    finally:
        await service.stop()
