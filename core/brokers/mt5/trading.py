"""The trading half of MT5Broker: entries, SL/TP changes and closes (split from `core.brokers.mt5.broker`).

What it guarantees on a real account (each checked against the MetaTrader5 docs):
- an entry is refused BEFORE anything is sent when the symbol's trade mode forbids it (disabled, long
  only, short only, close only), when a netting account already holds a position on the symbol (a second
  entry would merge into it: one position per symbol), or when `order_check` says no;
- a trade is keyed by its position IDENTIFIER (read from the entry's deals), which never changes, while
  the ticket can (swap re-open, netting reversal); positions are found by identifier, then ticket;
- a close names the position's ticket and its exact volume as read now; a FIFO account closes oldest first;
- an SL/TP change inside the freeze distance is "not now" (FrozenError), never a failure.
The retry policy per retcode is `core.brokers.mt5.orders.send_with_policy`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from core.brokers.base import (
    REFUSAL_TEXT,
    TRADE_MODE_CLOSEONLY,
    TRADE_MODE_LONGONLY,
    TRADE_MODE_SHORTONLY,
    BrokerError,
    FrozenError,
    OrderRequest,
    OrderResult,
    Position,
    PositionNotFoundError,
    RefusedError,
    Retcode,
    StaleQuoteError,
    SymbolInfo,
    error_for_retcode,
    fit_comment,
    netting_refusal,
    trade_mode_refusal,
)
from core.brokers.mt5 import convert as cv
from core.brokers.mt5 import terminal as mt5_terminal
from core.brokers.mt5.orders import hinted, send_with_policy
from core.brokers.mt5.outcomes import close_in_parts, find_closed, find_open, with_fill_price

log = logging.getLogger(__name__)

# what `order_check` refusals mean for a trader (docs: MqlTradeCheckResult covers margin, volume, stops, market)
CHECK_TEXT = {Retcode.NO_MONEY: "not enough free margin for this order",
              Retcode.INVALID_VOLUME: "the volume is outside the symbol's limits or step",
              Retcode.INVALID_STOPS: "the stop loss or take profit is too close to the price",
              Retcode.MARKET_CLOSED: "the market is closed"}


class MT5Trading:
    """Mixed into MT5Broker: uses its `_call`, `_spec`, `tick`, `positions`, `history_deals`, lock and policies."""

    # the adapter runs order_execution_fails / mt5_connection_lost itself (re-price, back off, reconcile
    # before any resend): callers send once, so no retry loop runs around this one
    applies_order_policy = True
    applies_connection_policy = True

    # -- trading ------------------------------------------------------------------------------------
    def _fresh_price(self, symbol: str, side: str) -> float:
        q = self.tick(symbol)
        age = self.now() - q.time
        if age > self.max_tick_age:
            raise StaleQuoteError(f"{symbol}: last quote is {age:.0f}s old (market closed or feed stalled)", None)
        return q.ask if side == "buy" else q.bid

    def market_order(self, request: OrderRequest) -> OrderResult:
        """An entry: refused before anything is sent when the symbol's trade mode forbids it, when a netting
        account already holds a position on the symbol (it would merge), or when `order_check` says no."""
        with self._operation():
            return self._market_order(request)

    def _market_order(self, request: OrderRequest) -> OrderResult:
        fit_comment(request.comment)
        info, tick_size = self._spec(request.symbol)  # fresh: trade mode, stops, volume step change
        why = trade_mode_refusal(info.trade_mode, request.side)
        if why:
            code = {TRADE_MODE_LONGONLY: Retcode.LONG_ONLY, TRADE_MODE_SHORTONLY: Retcode.SHORT_ONLY,
                    TRADE_MODE_CLOSEONLY: Retcode.CLOSE_ONLY}.get(info.trade_mode, Retcode.TRADE_DISABLED)
            raise RefusedError(f"{request.symbol}: {why}; nothing was sent", code)
        if self.account is None:
            self._read_account_mode()
        if self.netting:
            held = self.positions(request.symbol)
            if held:
                raise RefusedError(netting_refusal(request.symbol, held, request.magic), None)
        price = self._fresh_price(request.symbol, request.side)
        sl, tp = cv.snap_stops(request.side, request.sl, request.tp, tick_size, info.digits)
        req = {
            "action": cv.TRADE_ACTION_DEAL, "symbol": request.symbol, "volume": float(request.volume),
            "type": cv.ORDER_TYPE_BUY if request.side == "buy" else cv.ORDER_TYPE_SELL, "price": price,
            "sl": sl, "tp": tp, "deviation": int(request.deviation),
            "magic": int(request.magic), "comment": request.comment, "type_time": cv.ORDER_TIME_GTC,
            "type_filling": cv.filling_modes(info.filling_mode)[0],
        }
        self._order_check(req)
        anchor = request.price or price
        since = self.now() - 600
        return self._send(req, info, side=request.side, anchor=anchor,
                          already_done=lambda: find_open(self.positions, request,
                                                         lambda: self.history_deals(since=since)))

    def _order_check(self, req: dict[str, Any]) -> None:
        """`order_check` before every entry's `order_send` (docs: MqlTradeCheckResult covers margin, volume,
        stops, a closed market). A refusal raises the retcode's typed error with the check's comment and
        nothing is sent. Which retcode means "passed" is not stated on the docs pages we could find: the
        package's example prints 0 ("Done"), and 10009 DONE is accepted too. A check that cannot be made
        (None) is not a refusal: order_send's own answer still decides."""
        with self._lock:
            res = self._call("order_check", self._link.remote_dict(req) if self._link else req)
        if res is None:
            log.info("order_check unavailable (%s); sending without it", self._last[1])
            return
        r = cv.to_dict(res)
        rc = int(r.get("retcode") or 0)
        if rc in (0, Retcode.DONE):
            return
        text = CHECK_TEXT.get(rc) or REFUSAL_TEXT.get(rc) or hinted(str(r.get("comment") or f"retcode {rc}"), rc)
        self.trading_blocked = mt5_terminal.recheck(self.trading_blocked, mt5_terminal.refusal(rc, self.trading_blocked))
        raise error_for_retcode(rc, f"the broker's order check refused the {req['symbol']} order: {text} "
                                    f"(retcode {rc})")

    def modify_sltp(self, ticket: int, sl: float, tp: float) -> OrderResult:
        """`ticket`: the position's identifier (or its ticket). Refused with FrozenError ("not now", the
        caller tries next cycle) while the market is inside the symbol's freeze distance of the current
        SL/TP: the server would answer 10029 FROZEN anyway (MQL5 docs: trade_freeze_level)."""
        with self._operation():
            return self._modify_sltp(ticket, sl, tp)

    def _modify_sltp(self, ticket: int, sl: float, tp: float) -> OrderResult:
        p = self._position(ticket)
        info, tick_size = self._spec(p.symbol)  # fresh: the freeze level changes (news, rollover)
        if info.trade_freeze_level > 0:
            q = self.tick(p.symbol)
            ref = q.bid if p.type == "buy" else q.ask  # a long closes at the bid, a short at the ask
            dist = info.trade_freeze_level * info.point
            near = [lvl for lvl in (p.sl, p.tp) if lvl and abs(ref - lvl) <= dist + 1e-12]
            if near:
                raise FrozenError(f"position {p.key}: price {ref} is within the freeze distance ({dist:g}) of "
                                  f"{near[0]}; the stop is moved on a later cycle", Retcode.FROZEN)
        sl, tp = cv.snap_stops(p.type, sl, tp, tick_size, info.digits)
        req = {"action": cv.TRADE_ACTION_SLTP, "position": int(p.ticket), "symbol": p.symbol, "sl": sl,
               "tp": tp, "magic": int(p.magic)}
        return self._send(req, info, side=None, anchor=0.0, already_done=lambda: None)

    def close_position(self, ticket: int, volume: float | None = None, deviation: int = 20,
                       comment: str = "") -> OrderResult:
        """Close by the position's ticket with its exact volume as read now (never an opposite deal of a
        guessed volume: on a netting account that would reduce or reverse the position)."""
        fit_comment(comment)
        with self._operation():
            return close_in_parts(lambda: self._close_once(ticket, volume, deviation, comment), full=volume is None)

    def _close_once(self, ticket: int, volume: float | None, deviation: int, comment: str) -> OrderResult:
        p = self._position(ticket)
        info = self.symbol_info(p.symbol)
        side = "sell" if p.type == "buy" else "buy"
        vol = min(float(volume), p.volume) if volume is not None else p.volume
        if self.account is not None and self.account.fifo_close:
            older = [o for o in self.positions(p.symbol) if o.key != p.key and (o.time, o.ticket) < (p.time, p.ticket)]
            if older:  # MQL5 docs, ACCOUNT_FIFO_CLOSE: positions close in opening order, else an error
                raise RefusedError(f"position {p.key}: {REFUSAL_TEXT[Retcode.FIFO_CLOSE]} (ticket {older[0].ticket}, "
                                   f"{older[0].volume:g} lot); nothing was sent", Retcode.FIFO_CLOSE)
        price = self._fresh_price(p.symbol, side)
        req = {"action": cv.TRADE_ACTION_DEAL, "position": int(p.ticket), "symbol": p.symbol, "volume": vol,
               "type": cv.ORDER_TYPE_SELL if side == "sell" else cv.ORDER_TYPE_BUY, "price": price,
               "deviation": int(deviation), "magic": int(p.magic), "comment": comment,
               "type_time": cv.ORDER_TIME_GTC}
        return self._send(req, info, side=side, anchor=price,
                          already_done=lambda: find_closed(self.positions, p, vol))

    def _position(self, key: int) -> Position:
        """The open position whose identifier is `key` (a trade's key), else whose ticket is `key`.

        The identifier first: the ticket can change under service operations (swap charged by re-opening
        the position; a netting reversal), the identifier never does (MQL5 docs, POSITION_IDENTIFIER)."""
        rows = self._call("positions_get")
        if rows is None and self._last[0] != cv.RES_S_OK:  # a failed read: the position may well be open
            raise BrokerError(f"positions_get failed: {self._last[1]}", self._last[0])
        rows = [cv.to_dict(r) for r in rows or ()]
        row = next((r for r in rows if int(r.get("identifier") or 0) == int(key)), None)
        row = row or next((r for r in rows if int(r["ticket"]) == int(key)), None)
        if row is None:
            raise PositionNotFoundError(f"no open position with identifier or ticket {key}", Retcode.POSITION_CLOSED)
        self._ensure_offset(row["symbol"])
        return cv.position_from(row, self.offset)

    def _send(self, req: dict[str, Any], info: SymbolInfo, *, side: str | None, anchor: float,
              already_done: Callable[[], OrderResult | None]) -> OrderResult:
        with self._lock:
            if not self._connected:
                self.connect()
            try:
                res = send_with_policy(
                    self._order_send, req, info, side=side, anchor=anchor, already_done=already_done,
                    last_error=self._last_error, reconnect=self._reconnect, fresh_price=self._fresh_price,
                    connection=self.connection_policy, orders=self.order_policy, sleep=self._sleep,
                    confirm_checks=self.confirm_checks, order_fill=lambda o: self._order_fill(o, info.digits))
            except BrokerError as e:  # e.g. Algo Trading switched off after the start
                self.trading_blocked = mt5_terminal.recheck(self.trading_blocked, mt5_terminal.refusal(e.code, self.trading_blocked))
                raise
            self.trading_blocked = None  # an order went through: whatever blocked trading was fixed
            if not res.order or req["action"] != cv.TRADE_ACTION_DEAL:
                return res
            # the order's deals give the fill price and, for an entry, the position IDENTIFIER it landed in
            return with_fill_price(res, lambda: self._order_deals(res.order), info.digits)

    def _order_deals(self, order: int) -> list[dict[str, Any]]:
        """history_deals_get(ticket=) selects by the ORDER ticket, as the package documents."""
        return [cv.to_dict(r) for r in self._call("history_deals_get", ticket=int(order)) or ()]

    def _order_fill(self, order: int, digits: int) -> OrderResult | None:
        """The fill of `order` from its deals (PLACED confirmation); None while it has none."""
        try:
            deals = self._order_deals(order)
        except BrokerError:
            return None
        if sum(d["volume"] for d in deals) <= 0:
            return None
        base = OrderResult(retcode=Retcode.DONE, order=order, volume=sum(d["volume"] for d in deals))
        return with_fill_price(base, lambda: deals, digits)

    def _order_send(self, request: dict[str, Any]) -> Any:
        """Over the bridge the request dict is built on the terminal's side: the package wants a real dict."""
        return self.mt5.order_send(self._link.remote_dict(request) if self._link else request)
