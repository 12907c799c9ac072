"""MT5 with trading switched off (Algo Trading button, investor login, broker-side ban) is seen at connect,
said once at start-up with the fix, and shown in /health; MoneyBot still starts and analyses.

Before, a terminal with Algo Trading off was discovered at the first Approve (retcode 10027)."""
from __future__ import annotations

import logging

import pytest
from broker_contract_fixtures import SYM, MT5Driver
from fakes import fake_mt5 as mt5

from bot.health_text import health_text
from core.brokers.base import BrokerError, OrderRequest
from core.brokers.mt5.terminal import ALGO_TRADING_OFF, EXPERTS_DISABLED, INVESTOR_LOGIN, TRADE_DISABLED
from core.trading.authz import Authorizer

BUY = OrderRequest(symbol=SYM, side="buy", volume=0.01, sl=1998.0, tp=2005.0, magic=42, comment="rs:t")


def _driver(**terminal) -> MT5Driver:
    """MT5Driver resets the fake and connects; set the terminal up first, then connect again."""
    d = MT5Driver()
    d.broker.close()
    mt5.fake_set_terminal(**terminal)
    d.broker.connect()
    return d


@pytest.mark.parametrize(("terminal", "why", "code"), [
    ({"algo_trading": False}, ALGO_TRADING_OFF, 10027),
    ({"trade_allowed": False}, INVESTOR_LOGIN, 10017),
    ({"trade_expert": False}, EXPERTS_DISABLED, 10026),
])
def test_trading_switched_off_is_known_at_connect_and_orders_are_refused_with_that_code(terminal, why, code):
    d = _driver(**terminal)
    try:
        assert d.broker.trading_blocked == why
        assert d.broker.tick(SYM).bid == pytest.approx(2000.0)  # market data still flows
        with pytest.raises(BrokerError) as e:
            d.broker.market_order(BUY)
        assert e.value.code == code and d.broker.positions() == []
        assert d.broker.trading_blocked == why  # the refusal confirms the reason found at connect
    finally:
        d.broker.close()


def test_trade_disabled_on_an_account_that_allows_trading_names_both_likely_causes():
    """10017 is also what a symbol whose trading is switched off answers: don't blame the login alone."""
    d = _driver()
    try:
        assert d.broker.trading_blocked is None
        mt5.fake_inject("order_send", retcode=10017, message="Trade disabled")
        with pytest.raises(BrokerError):
            d.broker.market_order(BUY)
        assert d.broker.trading_blocked == TRADE_DISABLED and "for the symbol" in TRADE_DISABLED
    finally:
        d.broker.close()


def test_warned_once_per_change_and_cleared_when_an_order_goes_through(caplog):
    caplog.set_level(logging.WARNING, logger="core.brokers.mt5.terminal")
    d = _driver(algo_trading=False)
    try:
        assert "enable Algo Trading in the terminal toolbar" in d.broker.trading_blocked
        d.broker.close()
        d.broker.connect()  # a reconnect finds the same: not said again
        warned = [r.getMessage() for r in caplog.records if "will refuse orders" in r.getMessage()]
        assert len(warned) == 1 and "Algo Trading" in warned[0]
        mt5.fake_set_terminal(algo_trading=True)  # the trader pressed the button
        assert d.broker.market_order(BUY).position
        assert d.broker.trading_blocked is None
        mt5.fake_set_terminal(algo_trading=False)  # ... and pressed it again later
        with pytest.raises(BrokerError):
            d.broker.market_order(BUY)
        assert d.broker.trading_blocked == ALGO_TRADING_OFF
    finally:
        d.broker.close()


def test_an_order_refused_for_another_reason_does_not_hide_the_block():
    d = _driver(trade_expert=False)
    try:
        mt5.fake_set_market_closed(SYM)
        with pytest.raises(BrokerError):
            d.broker.market_order(BUY)
        assert d.broker.trading_blocked == EXPERTS_DISABLED
    finally:
        d.broker.close()


async def test_service_starts_says_so_once_and_health_shows_the_fix(tmp_path):
    from core.app import build_service
    from core.config.loading import load_config

    d = _driver(algo_trading=False)
    service = build_service(load_config(), broker=d.broker, clock=d.broker.clock, authorizer=Authorizer([1]),
                            store_path=tmp_path / "moneybot.sqlite")
    try:
        await service.start(monitor=False)
        assert service.ready  # not refused: analysis and monitoring still work
        sent = [a for a in service.notifier.sent if a.kind == "trading_blocked"]
        assert len(sent) == 1 and sent[0].severity == "high"
        assert "enable Algo Trading in the terminal toolbar" in sent[0].text
        assert "neither open nor close" in sent[0].text
        h = service.health()
        assert h.trading_blocked == ALGO_TRADING_OFF and not h.ok
        assert "enable Algo Trading in the terminal toolbar" in health_text(h)
    finally:
        await service.stop()
        d.broker.close()
