"""The MT5 adapter's edge: MT5 constants, and conversion of MT5 results into the port's plain models.

Over an rpyc bridge every result is a *netref*, a proxy to an object living in the Wine Python. Such a
proxy must never reach core: it dies with the connection, and each attribute read is a network round
trip. So every result is copied here into plain Python values (named tuples field by field, arrays
through pickle via `rpyc.classic.obtain`), and MT5 server times are shifted to UTC.

Constant values are MetaTrader5's own (checked against the MetaQuotes documentation); keeping them
here means no round trip to read `mt5.TRADE_ACTION_DEAL` and no import of MetaTrader5 in core.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from core.brokers.base import AccountInfo, Deal, Position, SymbolInfo, Tick
from core.data.candles import CANDLE_DTYPE, as_candles
from core.domain.timeframes import Timeframe

TIMEFRAMES = {Timeframe.M1: 1, Timeframe.M5: 5, Timeframe.M15: 15, Timeframe.M30: 30,
              Timeframe.H1: 16385, Timeframe.H4: 16388, Timeframe.D1: 16408}
ORDER_TYPE_BUY, ORDER_TYPE_SELL = 0, 1
TRADE_ACTION_DEAL, TRADE_ACTION_SLTP = 1, 6
ORDER_FILLING_FOK, ORDER_FILLING_IOC, ORDER_FILLING_RETURN = 0, 1, 2
ORDER_TIME_GTC = 0
SYMBOL_FILLING_FOK, SYMBOL_FILLING_IOC = 1, 2  # bits of symbol_info().filling_mode
DEAL_ENTRY = {0: "in", 1: "out", 2: "inout", 3: "out"}
DEAL_REASON = {0: "client", 1: "client", 2: "client", 3: "expert", 4: "sl", 5: "tp", 6: "so"}
log = logging.getLogger(__name__)
RES_S_OK = 1
# last_error() codes meaning the terminal itself is unreachable (IPC), not that the request was bad
IPC_ERRORS = {-10000, -10001, -10002, -10003, -10004, -10005}


def _plain_value(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str, bytes)):
        return v
    # a netref to a number (e.g. a numpy scalar): int() alone would truncate a price, float() a ticket
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    try:
        i = int(v)
    except (TypeError, ValueError, OverflowError):
        return f
    return i if i == f else f


def is_proxy(obj: Any) -> bool:
    """An rpyc netref: it passes isinstance() checks for the remote type, but type() tells."""
    return type(obj).__module__.startswith("rpyc")


def to_dict(record: Any) -> dict[str, Any]:
    """An MT5 record (local or netref) as a plain dict.

    The package's records are C types with `_asdict()` but no `_fields` (not collections.namedtuple).
    Over the bridge the record cannot be pickled, but its `_asdict()` (plain values) usually can: one
    round trip instead of one per field.
    """
    if not isinstance(record, dict):
        record = record._asdict()
    if is_proxy(record):
        try:
            from rpyc.utils.classic import obtain

            record = obtain(record)
        except Exception:  # noqa: BLE001 - a nested record (OrderSendResult.request) refuses pickle
            record = dict(list(record.items()))
    return {str(k): _plain_value(v) for k, v in record.items()}


def to_array(rates: Any, remote_tuple: Callable[[Any], Any] | None = None) -> np.ndarray:
    """Copy a rates array out of the bridge.

    A netref is pickled across (`rpyc.classic.obtain`) when the server allows pickling; otherwise it
    is turned into a tuple of row tuples *on the server* (`remote_tuple`), which rpyc then sends by
    value in one round trip. A netref passes `isinstance(x, np.ndarray)`, so checks on it must use
    `is_proxy`; an ndarray netref that slipped through would be returned into core still remote.
    """
    if not is_proxy(rates):
        return as_candles(np.array(rates))
    from rpyc.utils.classic import obtain  # (`import rpyc.classic` fails: it is an attribute, not a module)

    try:
        return as_candles(np.array(obtain(rates)))
    except Exception:  # noqa: BLE001 - server refuses pickle: fall back to plain tuples
        if remote_tuple is None:
            raise
        rows = remote_tuple(rates.tolist())
        return np.array([tuple(r) for r in rows], dtype=CANDLE_DTYPE)


def filling_modes(symbol_filling: int) -> list[int]:
    """Filling modes to try, best first: FOK if bit 1, IOC if bit 2, else RETURN; the rest as fallbacks."""
    first = (ORDER_FILLING_FOK if symbol_filling & SYMBOL_FILLING_FOK
             else ORDER_FILLING_IOC if symbol_filling & SYMBOL_FILLING_IOC else ORDER_FILLING_RETURN)
    order = [ORDER_FILLING_FOK, ORDER_FILLING_IOC, ORDER_FILLING_RETURN]
    i = order.index(first)
    return order[i:] + order[:i]


def snap_stops(side: str, sl: float, tp: float, tick_size: float, digits: int) -> tuple[float, float]:
    """SL/TP of a `side` position on the symbol's price grid; 0 stays 0 (no level).

    The server refuses levels off the trade_tick_size grid (an index quoted with 2 digits may move in
    0.25), and rounding to digits does not get there. Each level moves *away* from the market (a long's
    SL down, its TP up), so the stops-level distance the caller kept is never eaten by the snap.
    """
    def snap(level: float, up: bool) -> float:
        if not level or tick_size <= 0:
            return round(float(level), digits)
        n = level / tick_size
        n = math.ceil(n - 1e-7) if up else math.floor(n + 1e-7)
        return round(n * tick_size, digits)

    long = side == "buy"
    return snap(sl, up=not long), snap(tp, up=long)


def tick_from(d: dict[str, Any], offset: float) -> Tick:
    t = d["time_msc"] / 1000.0 if d.get("time_msc") else float(d["time"])
    return Tick(time=t - offset, bid=d["bid"], ask=d["ask"], last=d.get("last", 0.0) or 0.0)


def symbol_from(d: dict[str, Any]) -> SymbolInfo:
    return SymbolInfo.model_validate(d)


def account_from(d: dict[str, Any]) -> AccountInfo:
    return AccountInfo.model_validate(d)


def position_from(d: dict[str, Any], offset: float) -> Position:
    return Position(ticket=d["ticket"], symbol=d["symbol"], type="buy" if d["type"] == 0 else "sell",
                    volume=d["volume"], price_open=d["price_open"], sl=d["sl"], tp=d["tp"],
                    price_current=d["price_current"], profit=d["profit"], magic=d["magic"],
                    comment=d["comment"], time=float(d["time"]) - offset,
                    identifier=int(d.get("identifier") or 0))


def deal_from(d: dict[str, Any], offset: float) -> Deal | None:
    """None for non-trade deals (balance, credit...): the port's history is about positions."""
    if d["type"] not in (0, 1):
        return None
    return Deal(ticket=d["ticket"], order=d["order"], position_id=d["position_id"], symbol=d["symbol"],
                type="buy" if d["type"] == 0 else "sell", entry=DEAL_ENTRY.get(d["entry"], "out"),
                volume=d["volume"], price=d["price"], profit=d["profit"], commission=d["commission"],
                swap=d["swap"], magic=d["magic"], comment=d["comment"], time=float(d["time"]) - offset,
                reason=DEAL_REASON.get(d["reason"], "client"))


LOWER_CONFIRM_SECONDS = 120.0  # server-time progress a smaller estimate needs before it is believed


class ServerOffset:
    """Server time - UTC, configured, or learned from quotes as a whole number of half hours.

    A stale quote makes `server_time - now` *smaller* than the true offset, never larger, so a larger
    estimate is taken at once: one fresh quote (any open market) settles it. Estimates far from a
    half-hour multiple are stale quotes and are ignored. A smaller one is real after a DST switch
    back (New York + 7 h servers go from UTC+3 to UTC+2 in November), and is taken once quotes keep
    giving it while their server time moves on by `LOWER_CONFIRM_SECONDS`: a stale quote's server
    time stands still. Until a fresh quote is seen, staleness is under-estimated: pin the value
    (broker.mt5.server_utc_offset_hours) where that matters.
    """

    def __init__(self, hours: float | None) -> None:
        self.auto = hours is None
        self.seconds = 0.0 if hours is None else hours * 3600.0
        self.known = not self.auto
        self._lower: tuple[float, float] | None = None  # (smaller estimate, server time first seen)

    def learn(self, server_time: float, now: float) -> None:
        if not self.auto:
            return
        diff = server_time - now
        est = round(diff / 1800.0) * 1800.0
        if abs(diff - est) > 90 or abs(est) > 14 * 3600:
            return
        if self.known and est <= self.seconds:
            if est == self.seconds:
                self._lower = None  # a quote at the current offset: any smaller reading was a stale one
                return
            first = self._lower
            if first is None or first[0] != est or server_time < first[1]:
                self._lower = (est, server_time)
                return
            if server_time - first[1] < LOWER_CONFIRM_SECONDS:
                return
        self._lower = None
        if self.known:
            log.warning("MT5 server offset revised from %+.1fh to %+.1fh", self.seconds / 3600, est / 3600)
        else:
            log.info("MT5 server time is UTC%+.1fh (learned from a quote)", est / 3600)
        self.seconds, self.known = est, True
