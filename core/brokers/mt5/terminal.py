"""The MT5 terminal session: initialising it, and reading whether it will accept our orders.

Split from `core.brokers.mt5.broker` (the port). A terminal with "Algo Trading" off, an account logged in with
its investor password, or a broker that disables automated trading answers every order with a refusal;
before this check that was found at the first Approve. It is read at each (re)initialisation, so the
start-up can say it once, with the fix, while analysis and monitoring carry on.
"""
from __future__ import annotations

import logging
from typing import Any

from core.brokers.base import BrokerConnectionError
from core.brokers.mt5 import convert as cv

log = logging.getLogger(__name__)

ALGO_TRADING_OFF = ("Algo Trading is off in the MetaTrader 5 terminal, so it refuses every order: "
                    "enable Algo Trading in the terminal toolbar (the button turns green)")
INVESTOR_LOGIN = ("the MT5 account does not allow trading (usually a login with the investor, read-only "
                  "password): log in with the master password")
TRADE_DISABLED = ("the broker refused an order with 'trade disabled' (10017): trading is off for this account "
                  "(an investor, read-only login: log in with the master password) or for the symbol (check its "
                  "trade mode in the terminal's Market Watch)")
EXPERTS_DISABLED = ("the broker's server disables automated trading for this MT5 account: ask the broker to "
                    "enable it, or use another account")


def initialize(mt5: Any, link: Any, args: tuple, kwargs: dict) -> tuple[bool, Any]:
    """`mt5.initialize(...)`; over a bridge whose Wine side restarted, reopen it and try once more.
    Returns (ok, the module to use from now on: a reopened bridge has new proxies)."""
    try:
        return bool(mt5.initialize(*args, **kwargs)), mt5
    except (EOFError, OSError, ConnectionError) as e:
        log.warning("MT5 initialize failed over the bridge: %s", e)
    if link is None:
        return False, mt5
    try:  # the Wine Python restarted: the old proxies are dead, a new connection is needed
        mt5 = link.reopen()
        return bool(mt5.initialize(*args, **kwargs)), mt5
    except (BrokerConnectionError, EOFError, OSError, ConnectionError) as e:
        log.warning("MT5 bridge still unreachable: %s", e)
        return False, mt5


def trading_block(mt5: Any) -> str | None:
    """Why the terminal would refuse our orders now, with the fix; None when it would take them.

    Best effort: a flag that cannot be read is not reported (the order path still says what went wrong)."""
    for fn, flag, why in (("terminal_info", "trade_allowed", ALGO_TRADING_OFF),
                          ("account_info", "trade_allowed", INVESTOR_LOGIN),
                          ("account_info", "trade_expert", EXPERTS_DISABLED)):
        try:
            record = getattr(mt5, fn)()
            value = cv.to_dict(record).get(flag) if record is not None else None
        except Exception as e:  # noqa: BLE001 - a check must never cost the connection
            log.info("MT5 %s() unreadable for the trade permission check: %s", fn, e)
            continue
        if value is not None and not value:
            return why
    return None


# order refusals that mean "no order will go through until someone changes a setting"
_REFUSALS = {-8: ALGO_TRADING_OFF, 10027: ALGO_TRADING_OFF,  # RES_E_AUTO_TRADING_DISABLED, CLIENT_DISABLES_AT
             10026: EXPERTS_DISABLED, 10017: TRADE_DISABLED}  # SERVER_DISABLES_AT, TRADE_DISABLED


def refusal(code: int | None, otherwise: str | None) -> str | None:
    """The block an order refusal reveals; any other failure says nothing about permissions. A 10017
    while the account is already known to be read-only (from `account_info` at connect) keeps that, more
    precise, reason."""
    if code == 10017 and otherwise == INVESTOR_LOGIN:
        return otherwise
    return _REFUSALS.get(code, otherwise) if code is not None else otherwise


def recheck(old: str | None, new: str | None) -> str | None:
    """The new block reason (None: trading allowed), warned once per change, not at every reconnect."""
    if new and new != old:
        log.warning("MT5 will refuse orders: %s (analysis and monitoring carry on)", new)
    return new
