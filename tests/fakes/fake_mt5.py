"""A faithful fake of the `MetaTrader5` module, for tests on machines without a terminal.

Same function names and signatures, named-tuple types and field names, structured-array dtype and
constant values as the real package (values checked against the MetaQuotes docs). Behind it sits a
tiny trade server: it replays bars (bid OHLC + spread, like real MT5 bars), fills market orders at the
current bid/ask, validates volume, stops level, filling mode, deviation, margin and trading hours with
the real retcodes, and triggers SL/TP on each bar passed (SL first on a tie, as a pessimist would).

Because it is a real module object it can also be served over an rpyc bridge exactly like the real
package under Wine (`conn.modules.MetaTrader5`).

Test controls (not part of the MT5 API), all named `fake_*`: reset, add_symbol, advance, inject, deposit,
set_market_closed, set_terminal, set_stale, state.
"""
# ruff: noqa: F403, F405
from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from .mt5_constants import *  # the real module exposes all of these at top level
from .mt5_server import (  # noqa: F401 - S and _bar are reached for by tests
    S,
    _bar,
    _check_stops,
    _execute,
    _exposure,
    _fail,
    _fault,
    _ok,
    _quote,
    _result,
    _run_placed,
    _ticket,
)

__version__ = "5.0.4424"
__author__ = "fake for tests"

_REQUEST_KEYS = set(TradeRequest._fields)


# --- test controls (mt5_controls.py): the real module has none of these; re-exported for the tests -------
from .mt5_controls import (  # noqa: E402, F401
    fake_add_symbol,
    fake_advance,
    fake_deposit,
    fake_inject,
    fake_reopen,
    fake_reset,
    fake_rewrite_comment,
    fake_set_account,
    fake_set_market_closed,
    fake_set_stale,
    fake_set_symbol,
    fake_set_terminal,
    fake_state,
)


# --- internals ---------------------------------------------------------------------------------------
# --- the MetaTrader5 API -----------------------------------------------------------------------------
def initialize(path: str | None = None, *, login: int | None = None, password: str | None = None,
               server: str | None = None, timeout: int | None = None, portable: bool = False) -> bool:
    with S.lock:
        S.init_calls += 1
        f = _fault("initialize")
        if f and f["error"] is not None:
            S.initialized = False
            return bool(_fail(f["error"], f["message"] or "IPC initialize failed"))
        S.initialized = True
        _ok()
        return True


def login(login: int, password: str | None = None, server: str | None = None, timeout: int | None = None) -> bool:
    return initialize()


def shutdown() -> None:
    with S.lock:
        S.initialized = False


def last_error() -> tuple[int, str]:
    with S.lock:
        return S.last_error


def version() -> tuple[int, int, str]:
    return (500, 4424, "01 Jul 2024")


def _guard(function: str):
    """Common failure paths: not initialized, or an injected None-return."""
    if not S.initialized:
        return _fail(RES_E_INTERNAL_FAIL_CONNECT, "IPC initialize failed, MetaTrader 5 x64 not found") or True
    f = _fault(function)
    if f and f["error"] is not None:
        return _fail(f["error"], f["message"] or "Terminal: Call failed") or True
    return f


def terminal_info() -> TerminalInfo | None:
    with S.lock:
        if _guard("terminal_info") is True:
            return None
        return TerminalInfo(False, True, S.algo_trading, 4424, "MetaTrader 5 (fake)", "C:\\fake")


def account_info() -> AccountInfo | None:
    with S.lock:
        if _guard("account_info") is True:
            return None
        floating, margin = _exposure()
        equity = round(S.balance + floating, 2)
        return AccountInfo(12345678, ACCOUNT_TRADE_MODE_DEMO, S.leverage, 200, 0, *S.account.values(), S.margin_mode,
                           2, S.fifo_close,
                           round(S.balance, 2), 0.0, round(floating, 2), equity, round(margin, 2),
                           round(equity - margin, 2), 0.0, 50.0, 30.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                           "Fake Trader", "Fake-Demo", "USD", "Fake Broker Ltd")

def symbol_select(symbol: str, enable: bool = True) -> bool:
    with S.lock:
        if _guard("symbol_select") is True:
            return False
        if symbol not in S.symbols:
            return bool(_fail(RES_E_NOT_FOUND, "Terminal: Not found"))
        (S.selected.add if enable else S.selected.discard)(symbol)
        _ok()
        return True


def symbol_info(symbol: str) -> SymbolInfo | None:
    with S.lock:
        if _guard("symbol_info") is True:
            return None
        spec = S.symbols.get(symbol)
        if spec is None:
            return _fail(RES_E_NOT_FOUND, "Terminal: Not found")
        bid, ask, t = _quote(symbol)
        spread = int(round((ask - bid) / spec["point"]))
        values = dict.fromkeys(SymbolInfo._fields, 0)
        values.update(custom=False, select=symbol in S.selected, visible=symbol in S.selected, time=t,
                      digits=spec["digits"], spread=spread, spread_float=True, trade_mode=spec["trade_mode"],
                      trade_stops_level=spec["stops_level"], trade_freeze_level=spec.get("freeze_level", 0),
                      filling_mode=spec["filling_mode"], bid=bid, ask=ask,
                      point=spec["point"], trade_tick_size=spec["tick_size"], trade_contract_size=spec["contract_size"],
                      volume_min=spec["volume_min"], volume_max=spec["volume_max"],
                      volume_step=spec["volume_step"], currency_base=symbol[:3], currency_profit="USD",
                      currency_margin=symbol[:3], description=symbol, path=f"Fake\\{symbol}", name=symbol)
        _ok()
        return SymbolInfo(**values)


def symbol_info_tick(symbol: str) -> Tick | None:
    with S.lock:
        if _guard("symbol_info_tick") is True:
            return None
        if symbol not in S.symbols:
            return _fail(RES_E_NOT_FOUND, "Terminal: Not found")
        if symbol not in S.selected:  # not in Market Watch: the terminal has no quotes for it
            return _fail(RES_E_NOT_FOUND, "Terminal: Not found")
        bid, ask, t = _quote(symbol)
        if symbol in S.stale:
            t -= 3600
        _ok()
        return Tick(t, bid, ask, 0.0, 0, t * 1000, 6, 0.0)


def copy_rates_from_pos(symbol: str, timeframe: int, start_pos: int, count: int) -> np.ndarray | None:
    """Bars counted back from the forming one (start_pos 0), oldest first, like the terminal."""
    with S.lock:
        if _guard("copy_rates_from_pos") is True:
            return None
        if symbol not in S.symbols:
            return _fail(RES_E_INVALID_PARAMS, "Terminal: Invalid params")
        arr = S.rates.get((symbol, int(timeframe)))
        if arr is None:
            return _fail(RES_E_INVALID_PARAMS, "Terminal: Invalid params")
        now = int(_bar(symbol)["time"])
        forming = int(np.searchsorted(arr["time"], now, side="right")) - 1
        end = forming - start_pos + 1
        _ok()
        return arr[max(0, end - count):max(0, end)].copy()


def _position_tuple(p: dict[str, Any]) -> TradePosition:
    spec = S.symbols[p["symbol"]]
    bid, ask, t = _quote(p["symbol"])
    px = bid if p["type"] == POSITION_TYPE_BUY else ask
    profit = round((1 if p["type"] == 0 else -1) * (px - p["price_open"]) * p["volume"] * spec["contract_size"], 2)
    return TradePosition(p["ticket"], p["time"], p["time"] * 1000, t, t * 1000, p["type"], p["magic"], p["identifier"],
                         POSITION_REASON_EXPERT, p["volume"], p["price_open"], p["sl"], p["tp"], px, 0.0, profit,
                         p["symbol"], p["comment"], "")


def positions_get(symbol: str | None = None, group: str | None = None, ticket: int | None = None):
    with S.lock:
        if _guard("positions_get") is True:
            return None
        _run_placed()
        out = [p for p in S.positions.values()
               if (symbol is None or p["symbol"] == symbol) and (ticket is None or p["ticket"] == ticket)
               and not S.hidden.get(p["ticket"])]
        for t in list(S.hidden):  # each look-up brings a not-yet-synced fill one step closer
            S.hidden[t] -= 1
            if S.hidden[t] <= 0:
                del S.hidden[t]
        _ok()
        return tuple(_position_tuple(p) for p in sorted(out, key=lambda p: p["ticket"]))


def positions_total() -> int:
    with S.lock:
        return len(S.positions)


def _as_seconds(value) -> int:
    return int(value.timestamp()) if isinstance(value, datetime) else int(value)


def history_deals_get(date_from=None, date_to=None, group: str | None = None, ticket: int | None = None,
                      position: int | None = None):
    with S.lock:
        if _guard("history_deals_get") is True:
            return None
        _run_placed()
        hidden = set(S.hidden_deals)  # fills the terminal has not synced yet (ids: the booked order = identifier)
        for t in list(S.hidden_deals):
            S.hidden_deals[t] -= 1
            if S.hidden_deals[t] <= 0:
                del S.hidden_deals[t]
        if position is not None:
            rows = [d for d in S.deals if d["position_id"] == position]
        elif ticket is not None:
            rows = [d for d in S.deals if d["order"] == ticket]
        else:
            if date_from is None or date_to is None:
                return _fail(RES_E_INVALID_PARAMS, "Terminal: Invalid params")
            lo, hi = _as_seconds(date_from), _as_seconds(date_to)
            rows = [d for d in S.deals if lo <= d["time"] <= hi]
        _ok()
        return tuple(TradeDeal(**d) for d in rows if d["position_id"] not in hidden)


def order_send(request: dict[str, Any]) -> OrderSendResult | None:
    with S.lock:
        # a real dict: the C extension does not accept a mapping proxy (e.g. an rpyc netref to the
        # client's dict), so a request must be built on the terminal's side of a bridge
        if type(request) is not dict or set(request) - _REQUEST_KEYS:
            return _fail(RES_E_INVALID_PARAMS, "Invalid request structure")
        request = dict(request)
        S.requests.append(request)
        pending = S.faults.get("order_send") or []
        if pending and pending[0]["executed"] and S.initialized:
            f = pending.pop(0)
            booked = _execute(request)
            if f["visible_after"] and booked is not None and booked.retcode == TRADE_RETCODE_DONE \
                    and not request.get("position"):
                S.hidden[booked.order] = f["visible_after"]
                S.hidden_deals[booked.order] = f["visible_after"]
            if f["retcode"] is not None:  # the server executed it, the terminal reports e.g. a timeout
                bid, ask, _ = _quote(request["symbol"])
                _ok()
                return _result(f["retcode"], request, f["message"] or "Injected", bid=bid, ask=ask)
            return _fail(f["error"] or RES_E_INTERNAL_FAIL_TIMEOUT, f["message"] or "IPC timeout")
        g = _guard("order_send")
        if g is True:
            return None
        f = g
        if f and f["retcode"] == TRADE_RETCODE_PLACED and request.get("action") == TRADE_ACTION_DEAL:
            order = _ticket()
            if f["fill_after"] is not None:
                S.placed.append([max(1, f["fill_after"]), request, order])
            bid, ask, _ = _quote(request["symbol"])
            _ok()
            return _result(TRADE_RETCODE_PLACED, request, "Order placed", order=order, bid=bid, ask=ask)
        if f and f["retcode"] is not None:
            bid, ask, _ = _quote(request["symbol"]) if request.get("symbol") in S.symbols else (0.0, 0.0, 0)
            _ok()
            return _result(f["retcode"], request, f["message"] or "Injected", bid=bid, ask=ask)
        return _execute(request)


def order_check(request: dict[str, Any]) -> OrderCheckResult | None:
    """Validate like order_send without booking anything: the server's own checks on a copy of the state
    (margin, volume, stops, market closed, trade mode, netting/hedging rules). 0 "Done" when it would pass
    (the retcode the package's example prints)."""
    import copy

    with S.lock:
        if type(request) is not dict or set(request) - _REQUEST_KEYS:
            return _fail(RES_E_INVALID_PARAMS, "Invalid request structure")
        g = _guard("order_check")
        if g is True:
            return None
        saved = (copy.deepcopy(S.positions), list(S.deals), S.balance, S.next_ticket, list(S.requests))
        try:
            res = g and g["retcode"] is not None and _result(g["retcode"], request, g["message"] or "Injected")
            res = res or _execute(dict(request))
        finally:
            S.positions, S.deals, S.balance, S.next_ticket, S.requests = saved
        if res is None:
            return None
        floating, margin = _exposure()
        ok = res.retcode in (TRADE_RETCODE_DONE, TRADE_RETCODE_DONE_PARTIAL)
        _ok()
        equity = round(S.balance + floating, 2)
        return OrderCheckResult(0 if ok else res.retcode, round(S.balance, 2), equity, round(floating, 2),
                                round(margin, 2), round(equity - margin, 2), 0.0, "Done" if ok else res.comment,
                                res.request)


def symbols_total() -> int:
    with S.lock:
        return len(S.symbols)


def symbols_get(group: str | None = None):
    with S.lock:
        if _guard("symbols_get") is True:
            return None
        return tuple(symbol_info(name) for name in S.symbols)


def orders_get(symbol: str | None = None, group: str | None = None, ticket: int | None = None):
    """Pending orders: this fake server only executes market orders, so there are never any."""
    with S.lock:
        if _guard("orders_get") is True:
            return None
        _ok()
        return ()


def orders_total() -> int:
    return 0


def history_orders_get(date_from=None, date_to=None, group: str | None = None, ticket: int | None = None,
                       position: int | None = None):
    with S.lock:
        if _guard("history_orders_get") is True:
            return None
        _ok()
        return ()


def copy_rates_from(symbol: str, timeframe: int, date_from, count: int) -> np.ndarray | None:
    """`count` bars opened at or before `date_from` (server time), oldest first."""
    with S.lock:
        if _guard("copy_rates_from") is True:
            return None
        arr = S.rates.get((symbol, int(timeframe)))
        if arr is None:
            return _fail(RES_E_INVALID_PARAMS, "Terminal: Invalid params")
        now = int(_bar(symbol)["time"])
        end = int(np.searchsorted(arr["time"], min(_as_seconds(date_from), now), side="right"))
        _ok()
        return arr[max(0, end - count):end].copy()


def copy_rates_range(symbol: str, timeframe: int, date_from, date_to) -> np.ndarray | None:
    with S.lock:
        if _guard("copy_rates_range") is True:
            return None
        arr = S.rates.get((symbol, int(timeframe)))
        if arr is None:
            return _fail(RES_E_INVALID_PARAMS, "Terminal: Invalid params")
        now = int(_bar(symbol)["time"])
        lo, hi = _as_seconds(date_from), min(_as_seconds(date_to), now)
        _ok()
        return arr[(arr["time"] >= lo) & (arr["time"] <= hi)].copy()
