"""How MT5Broker sends one trade request: the retry, re-price and fallback policy per retcode.

Kept apart from the adapter so the policy reads as one table-like loop. Collaborators are passed in
(order_send, last_error, reconnect, fresh_price, sleep) so the loop has no hidden state.

Exactly-once: a market order (or a close) sent twice is a second fill, so what matters after a failure
is whether the first request could have executed. Each outcome is classed as follows:

| outcome                                   | executed?                       | what we do                       |
|-------------------------------------------|---------------------------------|----------------------------------|
| 10004/10020/10021 requote, price moved    | no (refused)                    | re-price, resend                 |
| 10030 invalid fill                        | no (refused)                    | resend once with the next mode   |
| 10024 too many requests                   | no (refused)                    | back off, resend                 |
| 10031 connection                          | no: the terminal had no server  | wait `connection.interval`,      |
|                                           | link, the request was not sent  | resend; then BrokerConnectionError |
| None + last_error -10003/-10004           | no: the library had no IPC      | reconnect, look up once, resend; |
|                                           | channel to the terminal         | then BrokerConnectionError       |
| None + last_error -10005 (IPC timeout),   | UNKNOWN: the terminal may have  | reconnect, then poll             |
| the bridge raised (EOF/OSError), or       | sent it and lost the reply      | `already_done()` `confirm_checks`|
| last_error() itself unreadable            |                                 | times over `connection.interval`;|
|                                           |                                 | found -> done, else              |
|                                           |                                 | BrokerConnectionError, NO resend |
| 10012 timeout                             | UNKNOWN (may execute late)      | poll over `orders.interval`;     |
|                                           |                                 | found -> done, else              |
|                                           |                                 | BrokerTimeoutError, NO resend    |

"No resend" applies to requests that are not idempotent (action DEAL: opens and closes). An SL/TP
change sets absolute values, so it is resent as before (a repeat answers 10025 NO_CHANGES = success).
An order that lands after the polling window is the caller's to reconcile: the execution engine
never resends on BrokerConnectionError/BrokerTimeoutError, the monitor and start-up recovery adopt
the position by its comment, and recovery journals it from the deal history if it already closed.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.brokers.base import (
    BrokerConnectionError,
    BrokerError,
    BrokerTimeoutError,
    InvalidFillError,
    OrderRequest,
    OrderResult,
    Position,
    PositionNotFoundError,
    Retcode,
    SymbolInfo,
    TooManyRequestsError,
    error_for_retcode,
)
from core.brokers.mt5 import convert as cv

log = logging.getLogger(__name__)

NO_CHANGES = 10025  # TRADE_RETCODE_NO_CHANGES: e.g. the same SL/TP sent again; nothing left to do
_SUCCESS = {Retcode.DONE, Retcode.PLACED, Retcode.DONE_PARTIAL, NO_CHANGES}
_REPRICE = {Retcode.REQUOTE, Retcode.PRICE_CHANGED, Retcode.PRICE_OFF}
# last_error codes that say the library never reached the terminal (init failed / no IPC channel)
IPC_NOT_DELIVERED = {-10003, -10004}
BRIDGE_BROKE = -10005  # the bridge raised mid-call: treated like an IPC timeout (outcome unknown)
DEFAULT_CONFIRM_CHECKS = 3
_ALGO_OFF = "turn on Algo Trading in the MetaTrader 5 terminal (toolbar button) and try again"
# what a trader can do about a refusal whose MT5 wording does not say it
HINTS = {-8: _ALGO_OFF, 10027: _ALGO_OFF,  # RES_E_AUTO_TRADING_DISABLED, TRADE_RETCODE_CLIENT_DISABLES_AT
         10026: "the broker's server has disabled automated trading for this account"}


def _hinted(text: str, code: int) -> str:
    return f"{text}: {HINTS[code]}" if code in HINTS else text


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    interval: float = 5.0


def find_open(positions: Callable[..., list[Position]], request: OrderRequest) -> OrderResult | None:
    """After an unknown outcome: did the order go through? Found by its (unique) comment."""
    if not request.comment:
        return None
    for p in positions(request.symbol, request.magic):
        if p.comment == request.comment:
            return OrderResult(retcode=Retcode.DONE, order=p.ticket, position=p.ticket, price=p.price_open,
                               volume=p.volume, comment="found after retry", requested_price=request.price or 0.0)
    return None


def find_closed(positions: Callable[..., list[Position]], before: Position, volume: float) -> OrderResult | None:
    """After an unknown outcome of a close: is the position gone, or down by `volume`?"""
    now = [p for p in positions(before.symbol) if p.ticket == before.ticket]
    if not now or now[0].volume <= before.volume - volume + 1e-9:
        return OrderResult(retcode=Retcode.DONE, position=before.ticket, volume=volume, comment="found after retry")
    return None


def with_fill_price(res: OrderResult, order_deals: Callable[[], list[dict[str, Any]]], digits: int) -> OrderResult:
    """`res` priced at its order's deals (volume-weighted); unchanged while they cannot be read.

    Under market execution the server may answer DONE before it knows the price (result.price 0): a
    close reported "at 0" would reach the trader as the exit price. The look-up never turns a fill
    into a failure."""
    try:
        deals = order_deals()
    except BrokerError as e:
        log.warning("order %s filled; its price is not readable yet: %s", res.order, e)
        return res
    volume = sum(d["volume"] for d in deals)
    if volume <= 0:
        return res
    price = sum(d["price"] * d["volume"] for d in deals) / volume
    return res.model_copy(update={"price": round(price, digits), "deal": res.deal or deals[0]["ticket"]})


MAX_CLOSE_PARTS = 10


def close_in_parts(close_once: Callable[[], OrderResult], *, full: bool) -> OrderResult:
    """A close; a full one goes on while fills come back partial (IOC fills what the book holds and
    cancels the rest: 10010), since "closed" said with part of the position open leaves money at risk.

    Each part is sized from the position as it is then, so a repeat can never over-close. Still partial
    after MAX_CLOSE_PARTS: BrokerError (the position is open; the caller's retry closes the rest)."""
    fills = [close_once()]
    while full and fills[-1].retcode == Retcode.DONE_PARTIAL:
        if len(fills) >= MAX_CLOSE_PARTS:
            done = sum(f.volume for f in fills)
            raise BrokerError(f"position {fills[0].position}: {done:g} lots closed in {len(fills)} partial "
                              "fills and the rest is still open", Retcode.DONE_PARTIAL)
        try:
            fills.append(close_once())
        except PositionNotFoundError:  # the rest closed meanwhile (its SL, a human)
            break
    if len(fills) == 1:
        return fills[0]
    volume = sum(f.volume for f in fills)
    price = sum(f.price * f.volume for f in fills) / volume if all(f.price for f in fills) and volume else 0.0
    return fills[-1].model_copy(update={"retcode": Retcode.DONE, "volume": round(volume, 8),
                                        "price": round(price, 8), "requested_price": fills[0].requested_price})


def confirm_outcome(
    already_done: Callable[[], OrderResult | None], *, checks: int, span: float, sleep: Callable[[float], None],
) -> OrderResult | None:
    """Look for an order whose outcome is unknown `checks` times spread over `span` seconds.

    Why more than once: a request the server executed may show up in positions/deals only after the
    terminal syncs; one look straight after the failure would miss it and invite a second fill.
    """
    checks = max(1, int(checks))
    for i in range(checks):
        if i:
            sleep(span / (checks - 1))
        try:
            found = already_done()
        except BrokerError as e:  # the look-up itself failed: still unknown, look again
            log.warning("looking up an unconfirmed order failed: %s", e)
            continue
        if found is not None:
            return found
    return None


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
    confirm_checks: int = DEFAULT_CONFIRM_CHECKS,
) -> OrderResult:
    """Send `req`; `side` None = no price to refresh (SL/TP changes); `anchor` = first price asked."""
    modes = cv.filling_modes(info.filling_mode)
    mode_i, fill_retry, reprices, other_retries, conn_retries = 0, False, 0, 0, 0
    deviation = req.get("deviation", 0) * info.point
    idempotent = req["action"] != cv.TRADE_ACTION_DEAL  # SL/TP: absolute values, a repeat changes nothing
    while True:
        if req["action"] == cv.TRADE_ACTION_DEAL:
            req["type_filling"] = modes[mode_i]
        try:
            res = order_send(dict(req))
        except (EOFError, OSError, ConnectionError) as e:
            res, code, msg = None, BRIDGE_BROKE, f"bridge failed during order_send: {e}"
        else:
            code, msg = last_error() if res is None else (0, "")
        if res is None:
            if code not in cv.IPC_ERRORS:
                raise BrokerError(_hinted(f"order_send rejected the request: {msg} ({code})", code), code)
            conn_retries += 1
            if conn_retries > connection.max_retries:
                raise BrokerConnectionError(f"order_send failed: MetaTrader 5 unreachable ({msg})", code)
            reconnect(f"order_send: {msg}", code)
            if code in IPC_NOT_DELIVERED or idempotent:
                if (found := already_done()) is not None:
                    return found
                continue
            found = confirm_outcome(already_done, checks=confirm_checks, span=connection.interval, sleep=sleep)
            if found is not None:
                return found
            raise BrokerConnectionError(
                f"order_send outcome unknown ({msg}) and the order is not visible at the broker after "
                f"{max(1, confirm_checks)} look-ups; not resent, to avoid a second fill", code)
        r = cv.to_dict(res)
        rc = int(r["retcode"])
        if rc in _SUCCESS:
            return OrderResult(retcode=rc, order=r["order"], deal=r["deal"],
                               position=int(req.get("position") or r["order"]), price=r["price"],
                               volume=r["volume"], comment=r["comment"], requested_price=anchor)
        text = _hinted(f"{r['comment']} (retcode {rc})", rc)
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
        if rc == Retcode.CONNECTION:  # the terminal had no link to the server: nothing was sent
            conn_retries += 1
            if conn_retries > connection.max_retries:
                raise BrokerConnectionError(f"trade server unreachable: {text}", rc)
            sleep(connection.interval)
            continue
        if rc == Retcode.TIMEOUT and not idempotent:
            found = confirm_outcome(already_done, checks=confirm_checks, span=orders.interval, sleep=sleep)
            if found is not None:
                return found
            raise BrokerTimeoutError(
                f"order timed out and is not visible at the broker after {max(1, confirm_checks)} look-ups; "
                f"not resent, to avoid a second fill: {text}", rc)
        if rc in (Retcode.TIMEOUT, Retcode.TOO_MANY_REQUESTS) and other_retries < orders.max_retries:
            other_retries += 1
            sleep(orders.interval)
            continue
        if rc == Retcode.POSITION_CLOSED:  # e.g. its SL hit between our look-up and this send
            raise PositionNotFoundError(f"position {req.get('position')} is already closed: {text}", rc)
        if rc == Retcode.TIMEOUT:
            raise BrokerTimeoutError(f"order timed out: {text}", rc)
        if rc == Retcode.TOO_MANY_REQUESTS:
            raise TooManyRequestsError(f"broker throttling: {text}", rc)
        raise error_for_retcode(rc, text)
