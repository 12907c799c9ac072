"""How MT5Broker sends one trade request: the retry, re-price and fallback policy per retcode.

Kept apart from the adapter so the policy reads as one table-like loop. Collaborators are passed in
(order_send, last_error, reconnect, fresh_price, sleep) so the loop has no hidden state.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.brokers import mt5_convert as cv
from core.brokers.base import (
    BrokerConnectionError,
    BrokerError,
    BrokerTimeoutError,
    InvalidFillError,
    OrderResult,
    Retcode,
    SymbolInfo,
    TooManyRequestsError,
    error_for_retcode,
)

log = logging.getLogger(__name__)

NO_CHANGES = 10025  # TRADE_RETCODE_NO_CHANGES: e.g. the same SL/TP sent again; nothing left to do
_SUCCESS = {Retcode.DONE, Retcode.PLACED, Retcode.DONE_PARTIAL, NO_CHANGES}
_REPRICE = {Retcode.REQUOTE, Retcode.PRICE_CHANGED, Retcode.PRICE_OFF}


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    interval: float = 5.0


def send_with_policy(
    order_send: Callable[[dict[str, Any]], Any],
    req: dict[str, Any],
    info: SymbolInfo,
    *,
    side: str | None,
    anchor: float,
    already_done: Callable[[], OrderResult | None],
    last_error: Callable[[], tuple[int, str]],
    reconnect: Callable[[str, int | None], None],
    fresh_price: Callable[[str, str], float],
    connection: RetryPolicy,
    orders: RetryPolicy,
    sleep: Callable[[float], None],
) -> OrderResult:
    """Send `req`; `side` None = no price to refresh (SL/TP changes); `anchor` = first price asked."""
    modes = cv.filling_modes(info.filling_mode)
    mode_i, fill_retry, reprices, other_retries, conn_retries = 0, False, 0, 0, 0
    deviation = req.get("deviation", 0) * info.point
    while True:
        if req["action"] == cv.TRADE_ACTION_DEAL:
            req["type_filling"] = modes[mode_i]
        try:
            res = order_send(dict(req))
        except (EOFError, OSError, ConnectionError) as e:
            res, code, msg = None, -10004, str(e)
        else:
            code, msg = last_error() if res is None else (0, "")
        if res is None:
            if code not in cv.IPC_ERRORS:
                raise BrokerError(f"order_send rejected the request: {msg} ({code})", code)
            conn_retries += 1
            if conn_retries > connection.max_retries:
                raise BrokerConnectionError(f"order_send failed: MetaTrader 5 unreachable ({msg})", code)
            reconnect(f"order_send: {msg}", code)
            if (found := already_done()) is not None:
                return found
            continue
        r = cv.to_dict(res)
        rc = int(r["retcode"])
        if rc in _SUCCESS:
            return OrderResult(retcode=rc, order=r["order"], deal=r["deal"],
                               position=int(req.get("position") or r["order"]), price=r["price"],
                               volume=r["volume"], comment=r["comment"], requested_price=anchor)
        text = f"{r['comment']} (retcode {rc})"
        if rc == Retcode.INVALID_FILL and not fill_retry:
            fill_retry, mode_i = True, (mode_i + 1) % len(modes)
            log.info("filling mode refused; retrying once with mode %d", modes[mode_i])
            continue
        if rc == Retcode.INVALID_FILL:
            raise InvalidFillError(f"no filling mode accepted for {req['symbol']}: {text}", rc)
        if rc in _REPRICE and side is not None and reprices < orders.max_retries:
            fresh = fresh_price(req["symbol"], side)
            if abs(fresh - anchor) > deviation + 1e-9:
                raise error_for_retcode(rc, f"price moved from {anchor} to {fresh}, beyond the deviation: {text}")
            reprices += 1
            req["price"] = fresh
            continue
        if rc == Retcode.CONNECTION:
            conn_retries += 1
            if conn_retries > connection.max_retries:
                raise BrokerConnectionError(f"trade server unreachable: {text}", rc)
            sleep(connection.interval)
            if (found := already_done()) is not None:
                return found
            continue
        if rc in (Retcode.TIMEOUT, Retcode.TOO_MANY_REQUESTS) and other_retries < orders.max_retries:
            other_retries += 1
            sleep(orders.interval)
            if rc == Retcode.TIMEOUT and (found := already_done()) is not None:
                return found
            continue
        if rc == Retcode.TIMEOUT:
            raise BrokerTimeoutError(f"order timed out: {text}", rc)
        if rc == Retcode.TOO_MANY_REQUESTS:
            raise TooManyRequestsError(f"broker throttling: {text}", rc)
        raise error_for_retcode(rc, text)
