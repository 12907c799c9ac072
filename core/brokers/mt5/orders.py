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
| None + last_error -10003/-10004           | probably not, but the request   | reconnect ONCE, read positions + |
|                                           | may have left before the IPC    | deals by magic + marker over     |
|                                           | link broke                      | `connection.interval`; found ->  |
|                                           |                                 | done; proven absent -> resend;   |
|                                           |                                 | look-ups failed -> no resend     |
| None + last_error -10005 (IPC timeout),   | UNKNOWN: the terminal may have  | reconnect, then poll             |
| the bridge raised (EOF/OSError), or       | sent it and lost the reply      | `already_done()` `confirm_checks`|
| last_error() itself unreadable            |                                 | times over `connection.interval`;|
|                                           |                                 | found -> done, else              |
|                                           |                                 | BrokerConnectionError, NO resend |
| 10012 timeout, 10039 close order exists   | UNKNOWN (may execute late)      | poll over `orders.interval`;     |
|                                           |                                 | found -> done, else typed error, |
|                                           |                                 | NO resend                        |
| 10008 PLACED on a market order            | accepted, NOT executed (docs:   | poll the order's deals and       |
|                                           | "Order placed" vs 10009 "Request| positions over `orders.interval`;|
|                                           | completed")                     | fill -> done, else               |
|                                           |                                 | BrokerTimeoutError, NO resend    |
| 10029 FROZEN                              | no                              | FrozenError: "not now"           |
| 10036/10038/10040/10042-10046             | no                              | typed refusal with the reason    |

"No resend" applies to requests that are not idempotent (action DEAL: opens and closes). An SL/TP
change sets absolute values, so it is resent as before (a repeat answers 10025 NO_CHANGES = success).
An order that lands after the polling window is the caller's to reconcile: the execution engine
never resends on BrokerConnectionError/BrokerTimeoutError, the monitor and start-up recovery adopt
the position (by its comment: it is an orphan then), and recovery journals it from the deal history if it
already closed. `max_retries` is the total number of attempts (`core.domain.retry`); the longest an
operation can sleep is `worst_case_seconds`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.brokers.base import (
    REFUSAL_TEXT,
    BrokerConnectionError,
    BrokerError,
    BrokerTimeoutError,
    CloseOrderExistsError,
    InvalidFillError,
    OrderResult,
    PositionNotFoundError,
    Retcode,
    SymbolInfo,
    TooManyRequestsError,
    error_for_retcode,
)
from core.brokers.mt5 import convert as cv
from core.brokers.mt5.outcomes import Unverified, confirm_outcome
from core.domain.retry import attempts_of, run_sync

log = logging.getLogger(__name__)

NO_CHANGES = 10025  # TRADE_RETCODE_NO_CHANGES: e.g. the same SL/TP sent again; nothing left to do
# PLACED counts as success only for requests that are not market deals (an SL/TP change); for a deal it is
# "accepted, not executed" (`_confirm_placed`)
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


def hinted(text: str, code: int) -> str:
    return f"{text}: {HINTS[code]}" if code in HINTS else text


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    interval: float = 5.0


def worst_case_seconds(connection: RetryPolicy, orders: RetryPolicy, *, exit_attempts: int = 1,
                       exit_interval: float = 0.0, parts: int = 1) -> dict[str, float]:
    """The longest one operation can sleep, from the config (`max_retries` = total attempts everywhere).

    One MT5 operation (an entry, an SL/TP change, one close attempt) reconnects at most ONCE (the
    adapter's `_operation` scope) and spends at most:
      reconnect      connection.max_retries x connection.interval   (a sleep before each re-initialise)
      reconcile      connection.interval                            (look-ups before a resend, -10003/-10004)
      refusals       (max(orders, connection attempts) - 1) x max(orders.interval, connection.interval)
                                                                    (10024 back-off / 10031 wait per resend)
      confirm        orders.interval                                (PLACED / 10012 / 10039 look-ups)
    and an unconfirmed entry adds the execution engine's look-ups: (orders attempts - 1) x orders.interval.
    A close adds those per part of a partial fill (`parts`, at most MAX_CLOSE_PARTS) minus the one
    reconnect, and the exit policy repeats the close `exit_attempts` times `exit_interval` apart.
    Network time of the calls themselves is not a sleep and is not counted (bounded by the terminal's
    `timeout_ms` per call)."""
    n_c, n_o = attempts_of(connection.max_retries), attempts_of(orders.max_retries)
    reconnect = n_c * connection.interval
    reconcile = connection.interval
    refusals = (max(n_o, n_c) - 1) * max(orders.interval, connection.interval)
    confirm = orders.interval
    one = reconnect + reconcile + refusals + confirm
    close_once = one + (max(1, parts) - 1) * (refusals + confirm)
    engine = (n_o - 1) * orders.interval  # the execution engine's look-ups after an unconfirmed entry
    return {"entry": one + engine, "sltp": reconnect + refusals, "close_attempt": close_once,
            "exit": exit_attempts * close_once + (max(1, exit_attempts) - 1) * exit_interval,
            "connect": reconnect}


class _Resend(Exception):
    """One `order_send` that did not go through, as the retry loop (`core.domain.retry.run_sync`) sees it.

    `error`: raised when it is not resent; `budget`: the total sends this kind of failure allows (None: a
    free resend, the same attempt: a fallback filling mode, a request proven never delivered); `wait`:
    seconds before the resend; `kind`: what `before_retry` prepares (re-price, next filling mode, reconnect)."""

    def __init__(self, error: BrokerError, *, kind: str, budget: int | None = None, wait: float = 0.0,
                 code: int = 0, msg: str = "") -> None:
        super().__init__(error.message)
        self.error, self.kind, self.budget, self.wait, self.code, self.msg = error, kind, budget, wait, code, msg


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
    order_fill: Callable[[int], OrderResult | None] | None = None,
) -> OrderResult:
    """Send `req`; `side` None = no price to refresh (SL/TP changes); `anchor` = first price asked.

    Budgets (`max_retries` = total attempts, as everywhere): at most `orders.max_retries` sends after
    refusals that prove nothing executed (requote, price changed, too many requests), at most
    `connection.max_retries` after 10031, one free resend with the next filling mode, and ONE reconnect
    (which runs `connection`'s whole budget) for an IPC failure. A resend happens only once positions and
    deals show the first request did not act (`before_retry`). The loop is `core.domain.retry.run_sync`:
    `send_once` sends one request and classes its answer, `before_resend` prepares and proves the resend."""
    modes = cv.filling_modes(info.filling_mode)
    st = {"mode": 0, "fill_retry": False, "reconnected": False}
    n_orders, n_conn = attempts_of(orders.max_retries), attempts_of(connection.max_retries)
    deviation = req.get("deviation", 0) * info.point
    idempotent = req["action"] != cv.TRADE_ACTION_DEAL  # SL/TP: absolute values, a repeat changes nothing

    def absent() -> OrderResult | None:
        """Before ANY resend of an order: positions and deals (magic + marker) show it did not act. A
        refusal's retcode says so too, but the resend waits for the broker's own books to agree."""
        if idempotent:
            return None
        try:
            return confirm_outcome(already_done, checks=1, span=0.0, sleep=sleep, proof=True)
        except Unverified as e:
            raise BrokerConnectionError(f"{e.message} after a refusal ({req['symbol']})", None) from None

    def send_once(_attempt: int) -> OrderResult:
        if req["action"] == cv.TRADE_ACTION_DEAL:
            req["type_filling"] = modes[st["mode"]]
        try:
            res = order_send(dict(req))
        except (EOFError, OSError, ConnectionError) as e:
            res, code, msg = None, BRIDGE_BROKE, f"bridge failed during order_send: {e}"
        else:
            code, msg = last_error() if res is None else (0, "")
        if res is None:
            if code not in cv.IPC_ERRORS:
                raise BrokerError(hinted(f"order_send rejected the request: {msg} ({code})", code), code)
            if st["reconnected"]:  # one reconnect per operation: no nested retry loops
                raise BrokerConnectionError(f"order_send failed: MetaTrader 5 unreachable ({msg})", code)
            raise _Resend(BrokerConnectionError(f"order_send failed: {msg}", code), kind="ipc", code=code, msg=msg)
        r = cv.to_dict(res)
        rc = int(r["retcode"])
        if rc == Retcode.PLACED and not idempotent:
            # docs (Trade Server Return Codes): 10008 "Order placed", 10009 "Request completed". For a market
            # order PLACED means accepted, not executed: the fill is confirmed from deals/positions first
            return _confirm_placed(r, req, anchor, already_done, order_fill, orders, sleep, confirm_checks)
        if rc in _SUCCESS:
            return OrderResult(retcode=rc, order=r["order"], deal=r["deal"],
                               position=int(req.get("position") or r["order"]), price=r["price"],
                               volume=r["volume"], comment=r["comment"], requested_price=anchor)
        text = hinted(f"{r['comment']} (retcode {rc})", rc)
        if rc in REFUSAL_TEXT:
            text = f"{REFUSAL_TEXT[rc]} ({r['comment']}, retcode {rc})"
        if rc == Retcode.INVALID_FILL:
            err = InvalidFillError(f"no filling mode accepted for {req['symbol']}: {text}", rc)
            if st["fill_retry"]:
                raise err
            raise _Resend(err, kind="fill", code=rc)  # the fallback mode is part of the same attempt
        if rc in _REPRICE and side is not None:
            raise _Resend(error_for_retcode(rc, text), kind="reprice", budget=n_orders, code=rc)
        if rc == Retcode.CONNECTION:  # the terminal had no link to the server: nothing was sent
            raise _Resend(BrokerConnectionError(f"trade server unreachable: {text}", rc), kind="wait",
                          budget=n_conn, wait=connection.interval, code=rc)
        if rc in (Retcode.TIMEOUT, Retcode.CLOSE_ORDER_EXIST) and not idempotent:
            # 10012: may execute late; 10039: a close of this position is already working. Neither is resent
            found = confirm_outcome(already_done, checks=confirm_checks, span=orders.interval, sleep=sleep)
            if found is not None:
                return found
            err = BrokerTimeoutError if rc == Retcode.TIMEOUT else CloseOrderExistsError
            raise err(f"not visible at the broker after {max(1, confirm_checks)} look-ups; not resent, to avoid "
                      f"a second fill: {text}", rc)
        if rc == Retcode.TIMEOUT:  # an SL/TP change: absolute values, resent after a pause
            raise _Resend(BrokerTimeoutError(f"order timed out: {text}", rc), kind="wait", budget=n_orders,
                          wait=orders.interval, code=rc)
        if rc == Retcode.TOO_MANY_REQUESTS:
            raise _Resend(TooManyRequestsError(f"broker throttling: {text}", rc), kind="wait", budget=n_orders,
                          wait=orders.interval, code=rc)
        if rc == Retcode.POSITION_CLOSED:  # e.g. its SL hit between our look-up and this send
            raise PositionNotFoundError(f"position {req.get('position')} is already closed: {text}", rc)
        raise error_for_retcode(rc, text)

    def before_resend(e: BaseException) -> OrderResult | None:
        """Prepare the resend of `e` and prove the first request did not act; a result = it did."""
        assert isinstance(e, _Resend)
        if e.kind == "ipc":
            reconnect(f"order_send: {e.msg}", e.code)  # raises BrokerConnectionError once its budget is spent
            st["reconnected"] = True
            if idempotent:  # an SL/TP change sets absolute values: resending it cannot double anything
                return None
            # -10003/-10004 mean "no IPC channel", but the request may still have left before the channel
            # broke: reconcile by magic and request marker (comment) over a bounded wait BEFORE any resend
            try:
                found = confirm_outcome(already_done, checks=confirm_checks, span=connection.interval, sleep=sleep,
                                        proof=e.code in IPC_NOT_DELIVERED)
            except Unverified as u:
                raise BrokerConnectionError(f"order_send failed ({e.msg}) and {u.message}", e.code) from None
            if found is not None or e.code in IPC_NOT_DELIVERED:
                return found  # None: proven not executed, the resend is the same attempt
            raise BrokerConnectionError(
                f"order_send outcome unknown ({e.msg}) and the order is not visible at the broker after "
                f"{max(1, confirm_checks)} look-ups; not resent, to avoid a second fill", e.code)
        if e.kind == "fill":
            st["fill_retry"], st["mode"] = True, (st["mode"] + 1) % len(modes)
            log.info("filling mode refused; retrying once with mode %d", modes[st["mode"]])
        elif e.kind == "reprice":
            fresh = fresh_price(req["symbol"], side or "")
            if abs(fresh - anchor) > deviation + 1e-9:
                raise error_for_retcode(e.code, f"price moved from {anchor} to {fresh}, beyond the deviation: "
                                                f"{e.error.message}")
            req["price"] = fresh
        return absent()

    try:
        return run_sync(max(n_orders, n_conn), 0.0, send_once, sleep=sleep, retry_on=(_Resend,),
                        retry_if=lambda e, nxt: e.budget is None or nxt < e.budget,
                        wait=lambda e: e.wait, counts=lambda e: e.budget is not None,
                        max_free=2,  # one filling-mode fallback + one resend after the one reconnect
                        before_retry=before_resend)
    except _Resend as e:
        raise e.error from None


def _confirm_placed(r: dict[str, Any], req: dict[str, Any], anchor: float,
                    already_done: Callable[[], OrderResult | None],
                    order_fill: Callable[[int], OrderResult | None] | None, orders: RetryPolicy,
                    sleep: Callable[[float], None], confirm_checks: int) -> OrderResult:
    """A market order the server accepted (10008) but has not reported filled: look for its deals (by the
    order ticket) or its position (by magic + marker) `confirm_checks` times over `orders.interval`.
    Nothing shows: BrokerTimeoutError, never a resend; a later fill is adopted by the late-fill scan."""
    order = int(r.get("order") or 0)

    def look() -> OrderResult | None:
        if order_fill is not None and order:
            filled = order_fill(order)
            if filled is not None:
                return filled.model_copy(update={"requested_price": anchor})
        return already_done()

    found = confirm_outcome(look, checks=confirm_checks, span=orders.interval, sleep=sleep)
    if found is not None:
        return found.model_copy(update={"retcode": Retcode.DONE})
    raise BrokerTimeoutError(
        f"the broker accepted order {order} (10008 PLACED) but no fill showed within {orders.interval:g}s; "
        "it is not counted as executed and not resent (a later fill is adopted)", Retcode.PLACED)
