"""Reading what the broker did with a request whose answer was lost or not final.

`send_with_policy` (core.brokers.mt5.orders) decides *when* to look; these helpers decide *what counts
as found*: a position or deal carrying the request's magic and marker, a close that shrank the position,
the fill price from the order's deals, a close that filled in parts. Kept apart so the send policy
reads as one loop.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from core.brokers.base import BrokerError, OrderRequest, OrderResult, Position, PositionNotFoundError, Retcode
from core.domain.retry import run_sync

log = logging.getLogger(__name__)


def find_open(positions: Callable[..., list[Position]], request: OrderRequest,
              deals: Callable[[], list[Any]] | None = None) -> OrderResult | None:
    """After an unknown outcome: did the order go through? Found by magic number plus request marker
    (the comment, unique per proposal) among the open positions, then among recent entry deals (an order
    that filled and already closed also "acted"). Keyed by the position identifier."""
    if not request.comment:
        return None
    for p in positions(request.symbol, request.magic):
        if p.comment == request.comment:
            return OrderResult(retcode=Retcode.DONE, order=p.identifier or p.ticket, position=p.key,
                               price=p.price_open, volume=p.volume, comment="found after retry",
                               requested_price=request.price or 0.0)
    for d in (deals() if deals is not None else ()):
        if d.magic == request.magic and d.comment == request.comment and d.entry == "in":
            return OrderResult(retcode=Retcode.DONE, order=d.order, deal=d.ticket, position=d.position_id,
                               price=d.price, volume=d.volume, comment="found in the deal history after retry",
                               requested_price=request.price or 0.0)
    return None


def find_closed(positions: Callable[..., list[Position]], before: Position, volume: float) -> OrderResult | None:
    """After an unknown outcome of a close: is the position gone, or down by `volume`? (by identifier)"""
    now = [p for p in positions(before.symbol) if p.key == before.key]
    if not now or now[0].volume <= before.volume - volume + 1e-9:
        return OrderResult(retcode=Retcode.DONE, position=before.key, volume=volume, comment="found after retry")
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
    # the deal names the position it opened or changed (DEAL_POSITION_ID = POSITION_IDENTIFIER): on a netting
    # account an entry can land in an existing position, so the order ticket is NOT the position
    position = int(deals[0].get("position_id") or 0) or res.position
    return res.model_copy(update={"price": round(price, digits), "deal": res.deal or deals[0]["ticket"],
                                  "position": position})


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


class Unverified(BrokerError):
    """The look-ups after a failed send could not be made: absence is NOT proven, so nothing is resent."""


class _NotSeen(Exception):
    """One look-up found nothing (yet): `confirm_outcome` looks again."""


def confirm_outcome(
    already_done: Callable[[], OrderResult | None], *, checks: int, span: float, sleep: Callable[[float], None],
    proof: bool = False,
) -> OrderResult | None:
    """Look for an order whose outcome is unknown `checks` times spread over `span` seconds.

    Why more than once: a request the server executed may show up in positions/deals only after the
    terminal syncs; one look straight after the failure would miss it and invite a second fill.
    `proof`: the caller will RESEND on None, so None must mean "looked and absent": if the last look-up
    failed, Unverified is raised instead. The looks run through `core.domain.retry.run_sync`.
    """
    checks = max(1, int(checks))
    last_ok = [False]

    def look(_i: int) -> OrderResult:
        try:
            found = already_done()
        except BrokerError as e:  # the look-up itself failed: still unknown, look again
            log.warning("looking up an unconfirmed order failed: %s", e)
            last_ok[0] = False
            raise _NotSeen() from None
        last_ok[0] = True
        if found is None:
            raise _NotSeen()
        return found

    try:
        return run_sync(checks, span / (checks - 1) if checks > 1 else 0.0, look, sleep=sleep, retry_on=(_NotSeen,))
    except _NotSeen:
        if proof and not last_ok[0]:
            raise Unverified("the broker could not be asked whether the order went through; not resent", None) from None
        return None
