"""Trading on the paper account: market orders, SL/TP changes and closes, booked as MT5 would book them.

Split from `core.brokers.paper.broker` (connection, replay clock, quotes, account and the SL/TP replay).
Each call checks and books under the store's lock in one transaction, so two threads cannot both pass the
margin check or both close one position; it refuses what a real broker refuses, with the MT5 retcodes
(volume, stops level, requote, margin). `PaperOrders` is a mixin of `PaperBroker` and uses its state
(store, symbols, clock, slippage, commission, `_spec`, `_quote`, `_sync`, `_funds`, `_persist_clock`).
"""
from __future__ import annotations

import logging

from core.brokers.base import (
    InvalidStopsError,
    InvalidVolumeError,
    NoMoneyError,
    OrderRequest,
    OrderResult,
    Position,
    PositionNotFoundError,
    RequoteError,
    Retcode,
    Tick,
)
from core.brokers.paper.fills import (
    deviation_problem,
    entry_price,
    exit_price,
    profit,
    stops_problem,
    volume_problem,
)
from core.config.market import SymbolSpec

log = logging.getLogger(__name__)


class PaperOrders:
    """The order-handling half of `PaperBroker` (see the module docstring)."""

    # -- trading ------------------------------------------------------------------------------------
    def _check_volume(self, spec: SymbolSpec, volume: float) -> None:
        problem = volume_problem(volume, spec.volume_min, 100.0, spec.volume_step)
        if problem:
            raise InvalidVolumeError(problem, Retcode.INVALID_VOLUME)

    def _check_stops(self, spec: SymbolSpec, side: str, sl: float, tp: float, q: Tick) -> None:
        problem = stops_problem(side, sl, tp, q.bid, q.ask, spec.stops_level_points * spec.point)
        if problem:
            raise InvalidStopsError(problem, Retcode.INVALID_STOPS)

    def market_order(self, request: OrderRequest) -> OrderResult:
        spec = self._spec(request.symbol)
        with self.store.lock:  # checks and booking as one step: threads must not both pass the margin check
            return self._market_order(spec, request)

    def _market_order(self, spec: SymbolSpec, request: OrderRequest) -> OrderResult:
        self._sync()
        self._check_volume(spec, request.volume)
        q = self._quote(request.symbol, for_trade=True)
        self._check_stops(spec, request.side, request.sl, request.tp, q)
        slip = self.slippage_points * spec.point
        price = round(entry_price(request.side, q.bid, q.ask, slip), spec.digits + 2)
        if problem := deviation_problem(request.price, price, request.deviation, spec.point):
            raise RequoteError(problem, Retcode.REQUOTE)
        need = request.volume * spec.contract_size * price / self.leverage
        if need > self._funds()[2]:  # synced above, under the lock: account_info().margin_free
            raise NoMoneyError(f"not enough free margin for {request.volume} lots ({need:.2f} needed)",
                               Retcode.NO_MONEY)
        st = self.store
        with st.transaction():
            ticket = st.next_ticket(2)  # the order's and its deal's, as two calls would give them
            deal_ticket = ticket + 1
            t = self.now()
            st.insert_order(ticket, request.symbol, request.side, request.volume, price, request.sl,
                            request.tp, request.magic, request.comment, t, ticket, "client")
            pos = Position(ticket=ticket, symbol=request.symbol, type=request.side, volume=request.volume,
                           price_open=price, sl=request.sl, tp=request.tp, magic=request.magic,
                           comment=request.comment, time=t)
            st.insert_position(pos)
            commission = -round(self.commission_per_lot * request.volume, 2)
            # the entry deal's row, in `Deal`'s column order (its values from the validated position)
            st.insert_deal_row((deal_ticket, ticket, ticket, pos.symbol, pos.type, "in", pos.volume, price, 0.0,
                                commission, 0.0, pos.magic, pos.comment, pos.time, "client"))
            st.add_to_balance(commission)
            self._persist_clock()
        log.info("paper %s %s %.2f @ %s (ticket %d)", request.side, request.symbol, request.volume, price, ticket)
        return OrderResult(retcode=Retcode.DONE, order=ticket, deal=deal_ticket, position=ticket, price=price,
                           volume=request.volume, comment="Request executed",
                           requested_price=request.price or 0.0)

    def _position(self, ticket: int) -> Position:
        p = self.store.position(ticket)
        if p is None:
            raise PositionNotFoundError(f"no open position with ticket {ticket}", Retcode.POSITION_CLOSED)
        return p

    def modify_sltp(self, ticket: int, sl: float, tp: float) -> OrderResult:
        with self.store.lock:
            return self._modify_sltp(ticket, sl, tp)

    def _modify_sltp(self, ticket: int, sl: float, tp: float) -> OrderResult:
        self._sync()
        p = self._position(ticket)
        spec = self._spec(p.symbol)
        q = self._quote(p.symbol, for_trade=True)
        self._check_stops(spec, p.type, sl, tp, q)
        with self.store.transaction():
            self.store.update_position(ticket, sl=float(sl), tp=float(tp))
            self._persist_clock()  # new stops apply from now on: bars before it must never be re-checked
        return OrderResult(retcode=Retcode.DONE, position=ticket, price=0.0, comment="Request executed")

    def close_position(self, ticket: int, volume: float | None = None, deviation: int = 20,
                       comment: str = "") -> OrderResult:
        with self.store.lock:  # two threads closing one position must not both book it
            return self._close_position(ticket, volume, comment)

    def _close_position(self, ticket: int, volume: float | None, comment: str) -> OrderResult:
        self._sync()
        p = self._position(ticket)
        spec = self._spec(p.symbol)
        vol = p.volume if volume is None else float(volume)
        self._check_volume(spec, vol)
        if vol > p.volume + 1e-9:
            raise InvalidVolumeError(f"cannot close {vol:g} lots of a {p.volume:g}-lot position",
                                     Retcode.INVALID_VOLUME)
        q = self._quote(p.symbol, for_trade=True)
        price = round(exit_price(p.type, q.bid, q.ask, self.slippage_points * spec.point), spec.digits + 2)
        with self.store.transaction():
            order = self.store.next_ticket(2)  # the order's and its deal's, as two calls would give them
            closing_side = "sell" if p.type == "buy" else "buy"
            self.store.insert_order(order, p.symbol, closing_side, vol, price, 0.0, 0.0, p.magic, comment,
                                    self.now(), ticket, "client")
            deal = self._book_exit(p, vol, price, self.now(), "client", order, order + 1, comment)
            self._persist_clock()
        return OrderResult(retcode=Retcode.DONE, order=order, deal=deal, position=ticket, price=price,
                           volume=vol, comment="Request executed")

    def _book_exit(self, p: Position, vol: float, price: float, t: float, reason: str, order: int, deal: int,
                   comment: str) -> int:
        """One exit deal (ticket `deal`), balance and position update; the caller holds the transaction."""
        st = self.store
        spec = self.symbols[p.symbol]
        pl = profit(p.type, p.price_open, price, vol, spec.contract_size)
        commission = -round(self.commission_per_lot * vol, 2)
        values = (deal, order, p.ticket, p.symbol, "sell" if p.type == "buy" else "buy", "out", vol, price, pl,
                  commission, 0.0, p.magic, comment, t, reason)  # `Deal`'s column order
        st.insert_deal_row(values)
        st.add_to_balance(pl + commission)
        remaining = round(p.volume - vol, 8)
        if remaining <= 1e-9:
            st.delete_position(p.ticket)
        else:
            st.update_position(p.ticket, volume=remaining)
        return deal
