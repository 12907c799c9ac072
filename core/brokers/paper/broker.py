"""PaperBroker: the embedded default broker, replaying real candles with a simulated clock.

Why a replay rather than a random walk: the strategies are tuned on real ranges, so paper trading
and backtests must see real highs, lows, spreads, weekend gaps and daily breaks.

Clock. The replay clock is any `core.domain.clock.Clock`: an `AcceleratedClock` (wall time mapped onto the
data, speed 1 = real time) for live paper trading, or a `FixedClock` for tests and backtests, moved
with `step()` (to the next bar open) or `advance_to(t)`. Every public call first books the SL/TP hits
of the bars completed since the previous call, so a fast clock never skips a stop.

Fills (details in `core.brokers.paper.fills`): market orders fill at the open of the bar covering the
clock (bid; ask = bid + spread) +/- slippage. SL/TP trigger inside the bar on high/low; longs exit at
the bid, shorts at the ask. **Tie rule: if SL and TP both lie inside one bar, the SL is assumed hit
first.** A bar opening beyond a stop fills at that open. Stop exits are stamped at the bar's close
time, the first moment a bar-based replay can know they happened.

It refuses what a real broker refuses, with the MT5 retcodes: unknown symbol, volume below the
minimum or off the step, SL/TP on the wrong side or inside the stops level (10016), no bar covering
the clock (weekend / daily break: market closed, 10018) unless the symbol trades weekends, price
moved beyond the request's deviation (requote, 10004), not enough free margin (10019). Orders, SL/TP
changes and closes are `core.brokers.paper.orders`; this module keeps the clock, quotes, account and replay.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from core.brokers.base import (
    AccountInfo,
    Deal,
    MarketClosedError,
    Position,
    Retcode,
    SymbolInfo,
    Tick,
    UnknownSymbolError,
)
from core.brokers.paper.feed import ReplayFeed
from core.brokers.paper.fills import (
    StopHit,
    profit,
    stop_hit,
)
from core.brokers.paper.orders import PaperOrders
from core.brokers.paper.store import PaperStore
from core.config.market import SymbolSpec
from core.domain.clock import Clock
from core.domain.timeframes import Timeframe

log = logging.getLogger(__name__)

# SYMBOL_FILLING_FOK | SYMBOL_FILLING_IOC: the paper broker fills every order completely at once.
_PAPER_FILLING = 3
_PRICED = frozenset({"price_current", "profit"})
_TICK_FIELDS = frozenset({"time", "bid", "ask", "last"})
_set = object.__setattr__


def _tick(t: float, bid: float, ask: float) -> Tick:
    """`Tick(time=t, bid=bid, ask=ask, last=bid)` from values that are floats already, which its validation
    returns unchanged: the same fields and fields set, without the validator (a quote per clock move).
    Anything not exactly a float is validated."""
    if type(t) is not float or type(bid) is not float or type(ask) is not float:
        return Tick(time=t, bid=bid, ask=ask, last=bid)
    out = Tick.__new__(Tick)
    _set(out, "__dict__", {"time": t, "bid": bid, "ask": ask, "last": bid})
    _set(out, "__pydantic_extra__", None)
    _set(out, "__pydantic_fields_set__", set(_TICK_FIELDS))
    _set(out, "__pydantic_private__", None)
    return out


def _priced(p: Position, px: float, pl: float) -> Position:
    """`p.model_copy(update={"price_current": px, "profit": pl})`, field for field (the same `__dict__`, fields
    set, extra and private values), without pydantic's generic copy: every monitor cycle makes one per open
    position, and the generic path cost about three times this. Anything unusual takes the generic path."""
    if p.__pydantic_extra__ is not None or p.__pydantic_private__ is not None:
        return p.model_copy(update={"price_current": px, "profit": pl})
    out = Position.__new__(Position)
    values = p.__dict__.copy()
    values["price_current"] = px
    values["profit"] = pl
    _set(out, "__dict__", values)
    _set(out, "__pydantic_extra__", None)
    _set(out, "__pydantic_fields_set__", p.__pydantic_fields_set__ | _PRICED)
    _set(out, "__pydantic_private__", None)
    return out


class PaperBroker(PaperOrders):
    name = "paper"

    def __init__(
        self,
        symbols: Mapping[str, SymbolSpec],
        feed: ReplayFeed,
        *,
        db_path: str | Path,
        clock: Clock,
        slippage_points: float = 0.0,
        commission_per_lot: float = 0.0,
        start_balance: float = 10_000.0,
        leverage: int = 100,
        login: int = 1,
    ) -> None:
        self.symbols = dict(symbols)
        self.feed = feed
        self.db_path = db_path
        self.clock = clock
        self.slippage_points = float(slippage_points)
        self.commission_per_lot = float(commission_per_lot)
        self.start_balance = float(start_balance)
        self.leverage = int(leverage)
        self.login = login
        self._store: PaperStore | None = None
        self._infos: dict[str, tuple[SymbolSpec, SymbolInfo]] = {}
        self._quotes: dict[tuple[str, bool], tuple[float, SymbolSpec | None, Tick]] = {}
        self._evaluated = 0.0  # replay time up to which SL/TP have been checked
        self.resumed_at: float | None = None  # set when connect() moved the clock to the account's last stop

    # -- lifecycle ----------------------------------------------------------------------------------
    def connect(self) -> None:
        if self._store is None:
            store = PaperStore(self.db_path, self.start_balance)
            saved = store.get_meta("clock")
            # a restarted account resumes where it stopped instead of replaying its own past
            if saved is not None and hasattr(self.clock, "set") and self.clock.now() < float(saved):
                self.clock.set(float(saved))
                self.resumed_at = float(saved)
            self._evaluated = float(store.get_meta("evaluated_until", repr(self.now())))
            self._store = store
            self._sync()

    def close(self) -> None:
        if self._store is not None:
            with self._store.transaction():
                self._persist_clock()
            self._store.close()
            self._store = None

    def is_connected(self) -> bool:
        return self._store is not None

    @property
    def store(self) -> PaperStore:
        if self._store is None:
            self.connect()
        assert self._store is not None
        return self._store

    def now(self) -> float:
        return float(self.clock.now())

    # -- replay control (step mode) -----------------------------------------------------------------
    def advance_to(self, t: float) -> None:
        if not hasattr(self.clock, "set"):
            raise TypeError("advance_to() needs a settable clock (core.domain.clock.FixedClock)")
        if t < self.now():
            raise ValueError("the replay clock cannot go backwards")
        self.clock.set(t)
        self._sync()

    def step(self) -> float | None:
        """Move to the next bar open of any symbol; returns the new time, None at the end of the data."""
        nxt = self.feed.next_open_after(self.now())
        if nxt is not None:
            self.advance_to(nxt)
        return nxt

    # -- market data --------------------------------------------------------------------------------
    def _spec(self, symbol: str) -> SymbolSpec:
        spec = self.symbols.get(symbol)
        if spec is None or not self.feed.has(symbol):
            known = ", ".join(sorted(self.symbols))
            raise UnknownSymbolError(f"unknown symbol {symbol!r} (known: {known})", code=None)
        return spec

    def symbol_info(self, symbol: str) -> SymbolInfo:
        spec = self._spec(symbol)
        # read on every monitor cycle; built once per spec (a paper symbol's properties never change)
        hit = self._infos.get(symbol)
        if hit is not None and hit[0] is spec:
            return hit[1]
        info = SymbolInfo(
            name=symbol, digits=spec.digits, point=spec.point, trade_stops_level=spec.stops_level_points,
            volume_min=spec.volume_min, volume_step=spec.volume_step, filling_mode=_PAPER_FILLING,
            trade_contract_size=spec.contract_size, spread=spec.default_spread_points,
        )
        self._infos[symbol] = (spec, info)
        return info

    @staticmethod
    def _spread(spec: SymbolSpec, bar_spread_points: int) -> float:
        """A bar's spread in price units; a bar without one (0) gets the symbol's default."""
        return (int(bar_spread_points) or spec.default_spread_points) * spec.point

    def _quote(self, symbol: str, *, for_trade: bool) -> Tick:
        """The quote at the clock: a pure function of (symbol, clock time, for_trade) over bars that never
        change once loaded, so the last one per symbol is reused while the clock stands (a monitor cycle
        asks for it three times: positions, the tick, an order)."""
        t = self.now()
        spec = self.symbols.get(symbol)
        hit = self._quotes.get((symbol, for_trade))
        if hit is not None and hit[0] == t and hit[1] is spec:
            return hit[2]
        q = self._make_quote(symbol, t, for_trade)
        self._quotes[(symbol, for_trade)] = (t, spec, q)
        return q

    def _make_quote(self, symbol: str, t: float, for_trade: bool) -> Tick:
        spec = self._spec(symbol)
        feed = self.feed
        i = feed.covering_index(symbol, t)
        if i is not None:
            bid = feed.base_view(symbol, "open")[i]
            spread = self._spread(spec, feed.base_view(symbol, "spread")[i])
            return _tick(t, bid, round(bid + spread, spec.digits + 2))
        base = feed.base_bars(symbol)
        j = feed.last_closed_index(symbol, t)
        if (for_trade and not spec.trades_weekends) or j is None:
            raise MarketClosedError(f"{symbol}: market closed at the replay time (no bar covers it)",
                                    Retcode.MARKET_CLOSED)
        bar = base[j]
        bid = float(bar["close"])
        stamp = float(bar["time"]) + feed.base_timeframe(symbol).seconds
        return Tick(time=t if for_trade else stamp, bid=bid, ask=bid + self._spread(spec, bar["spread"]), last=bid)

    def tick(self, symbol: str) -> Tick:
        """The live quote; when the market is closed, the last one (stamped with its own time), as MT5 does."""
        self._sync()
        return self._quote(symbol, for_trade=False)

    def data_span(self, symbol: str, timeframe: Timeframe | str) -> tuple[float, float] | None:
        """First and last bar time of the replayed data (the finest bars when `timeframe` is not in the
        files), or None without data: a replay clock outside this span has nothing to analyse."""
        if not self.feed.has(symbol):
            return None
        tf = Timeframe.parse(timeframe)
        try:
            t = self.feed.times(symbol, tf)
        except KeyError:
            t = self.feed.base_times(symbol)
        return (float(t[0]), float(t[-1])) if len(t) else None

    def price_span(self, symbol: str) -> tuple[float, float, Timeframe] | None:
        """From the first bar's open to the last bar's close of the bars quotes and fills come from (the finest
        the files have), with their timeframe; None without data. Outside it there is no quote and no order,
        even where a coarser file still has bars to analyse (an M1 file shorter than the M5 one)."""
        if not self.feed.has(symbol):
            return None
        t = self.feed.base_times(symbol)
        tf = self.feed.base_timeframe(symbol)
        return (float(t[0]), float(t[-1]) + tf.seconds, tf) if len(t) else None

    def candles(self, symbol: str, timeframe: Timeframe, count: int) -> np.ndarray:
        self._spec(symbol)
        return self.feed.closed(symbol, Timeframe.parse(timeframe), self.now(), count)

    # -- account and positions ----------------------------------------------------------------------
    def _floating(self, p: Position) -> tuple[float, float]:
        spec = self.symbols[p.symbol]
        try:
            q = self._quote(p.symbol, for_trade=False)
        except MarketClosedError:
            return p.price_open, 0.0
        px = q.bid if p.type == "buy" else q.ask
        return px, profit(p.type, p.price_open, px, p.volume, spec.contract_size)

    def account_info(self) -> AccountInfo:
        self._sync()
        balance, equity, margin_free = self._funds()
        return AccountInfo(login=self.login, balance=round(balance, 2), equity=equity,
                           margin_free=margin_free, leverage=self.leverage, server="paper")

    def _funds(self) -> tuple[float, float, float]:
        """(balance, equity, free margin) at the clock; the order's margin check needs only these, not an
        AccountInfo (callers have synced)."""
        with self.store.lock:
            balance = self.store.balance()
            open_ = self.store.positions()
        floating = sum(self._floating(p)[1] for p in open_)
        equity = round(balance + floating, 2)
        margin = sum(p.volume * self.symbols[p.symbol].contract_size * p.price_open / self.leverage for p in open_)
        return balance, equity, round(equity - margin, 2)

    def positions(self, symbol: str | None = None, magic: int | None = None) -> list[Position]:
        self._sync()
        out = []
        for p in self.store.positions(symbol, magic):
            px, pl = self._floating(p)
            out.append(_priced(p, px, pl))
        return out

    def history_deals(self, position_id: int | None = None, since: float | None = None) -> list[Deal]:
        self._sync()
        return self.store.deals(position_id, since)

    # -- the replay engine --------------------------------------------------------------------------
    def _persist_clock(self) -> None:
        """Save the replay position; callers hold a transaction (it is written with what it dates)."""
        st = self.store
        st.set_meta("evaluated_until", repr(self._evaluated))
        st.set_meta("clock", repr(self.now()))

    def _first_stop(self, p: Position, spec: SymbolSpec, lo: int, hi: int) -> tuple[float, Position, StopHit,
                                                                                  SymbolSpec] | None:
        """The first of the base bars lo..hi-1 that hits `p`'s SL or TP, as (its close time, p, hit, spec).

        Reads the bars' columns element by element (plain ints and floats, the values of a whole-row read,
        at a fraction of its cost and with no `BarPrices`): this runs for every open position on every step."""
        feed, sym = self.feed, p.symbol
        times, opens, highs, lows, spreads = feed.bar_views(sym)
        side, sl, tp = p.type, p.sl, p.tp
        slip = self.slippage_points * spec.point
        for i in range(lo, hi):
            hit = stop_hit(side, sl, tp, opens[i], highs[i], lows[i], self._spread(spec, spreads[i]), slip)
            if hit:
                return float(times[i]) + feed.base_timeframe(sym).seconds, p, hit, spec
        return None

    def _sync(self) -> None:
        """Book every SL/TP hit in the bars completed since the last call, in time order.

        Re-checking bars after a crash is harmless (a bar that did not hit an unchanged stop will not
        hit it on a second look), so the checked-up-to mark is written only along with a booking or a
        stop change, never on a plain read: reads stay free of disk writes.
        """
        st = self._store
        if st is None:
            return
        with st.lock:
            t = self.now()
            last = self._evaluated
            if t <= last:
                return
            hits = []
            feed = self.feed
            for p in st.positions():
                spec = self.symbols.get(p.symbol)
                if spec is None or not feed.has(p.symbol):
                    continue
                lo, hi = feed.closed_span(p.symbol, max(last, p.time), t)
                if lo < hi and (found := self._first_stop(p, spec, lo, hi)) is not None:
                    hits.append(found)
            if not hits:
                self._evaluated = t
                return
            # the mark moves only with the hits booked: a failed write leaves these bars to the next look
            try:
                with st.transaction():
                    for when, p, hit, spec in sorted(hits, key=lambda h: (h[0], h[1].ticket)):
                        order = st.next_ticket(2)  # the order's and its deal's, as two calls would give them
                        price = round(hit.price, spec.digits + 2)
                        st.insert_order(order, p.symbol, "sell" if p.type == "buy" else "buy", p.volume, price,
                                        0.0, 0.0, p.magic, p.comment, when, p.ticket, hit.reason)
                        level = p.sl if hit.reason == "sl" else p.tp  # MT5 writes the level, e.g. "[sl 2911.20]"
                        self._book_exit(p, p.volume, price, when, hit.reason, order, order + 1,
                                        f"[{hit.reason} {level:.{spec.digits}f}]")
                    self._evaluated = t
                    self._persist_clock()
            except BaseException:
                self._evaluated = last
                raise
