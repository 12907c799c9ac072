"""The fake MetaTrader5's test controls (not part of the MT5 API), all named `fake_*`; re-exported by
fake_mt5.py so tests call `mt5.fake_inject(...)` as before. Split from fake_mt5.py (API functions) and
mt5_server.py (the trade server)."""
# ruff: noqa: F403, F405
from __future__ import annotations

from typing import Any

import numpy as np

from .mt5_constants import *
from .mt5_constants import _TF_SECONDS
from .mt5_server import S, _check_stops, _ticket


def fake_reset(balance: float = 10_000.0, server_offset_hours: float = 0.0) -> None:
    with S.lock:
        S.reset(balance, server_offset_hours)


def fake_add_symbol(name: str, rates: dict[int, np.ndarray], *, digits: int = 2, point: float = 0.01,
                    stops_level: int = 0, contract_size: float = 1.0, volume_min: float = 0.01,
                    volume_step: float = 0.01, volume_max: float = 100.0, filling_mode: int = 1,
                    start_index: int = 0, spread: int = 0, tick_size: float | None = None,
                    freeze_level: int = 0) -> None:
    """Rates are bid bars in *server time*; the smallest timeframe drives ticks and SL/TP.

    `tick_size` (trade_tick_size, default `point`) is the price grid: indices often move in 0.25 or 1.0
    while quoting 2 digits; SL/TP off that grid are refused (10016) as a real server does."""
    with S.lock:
        S.symbols[name] = dict(digits=digits, point=point, tick_size=tick_size or point,
                               stops_level=stops_level, contract_size=contract_size,
                               volume_min=volume_min, volume_step=volume_step, volume_max=volume_max,
                               filling_mode=filling_mode, spread=spread, trade_mode=SYMBOL_TRADE_MODE_FULL,
                               freeze_level=freeze_level)
        for tf, arr in rates.items():
            S.rates[(name, int(tf))] = np.array(arr, dtype=RATES_DTYPE)
        S.base_tf[name] = min(rates, key=lambda t: _TF_SECONDS[int(t)])
        S.cursor[name] = start_index


def fake_advance(symbol: str, bars: int = 1) -> None:
    """Move the symbol's market forward, evaluating SL/TP on each bar that completes."""
    with S.lock:
        base = S.rates[(symbol, S.base_tf[symbol])]
        for _ in range(bars):
            bar = base[S.cursor[symbol]]
            _check_stops(symbol, bar)
            S.cursor[symbol] += 1


def fake_inject(function: str, *, error: int | None = None, retcode: int | None = None, times: int = 1,
                message: str = "", executed: bool = False, visible_after: int = 0,
                fill_after: int | None = None) -> None:
    """Next `times` calls of `function` fail: return None with last_error `error`, or retcode `retcode`.

    `executed=True` (order_send only) books the order first and *then* loses the reply (returns None
    with `error`, default IPC timeout, or the `retcode` result, e.g. 10012): the case exactly-once
    execution has to survive. `visible_after=N` also hides the booked position from the next N
    `positions_get` calls, as a terminal that has not synced the server's fill yet.
    `retcode=10008` (PLACED) on order_send answers "order placed" with an order ticket and books the fill
    only after `fill_after` further positions/deals look-ups (None: it never fills).
    """
    with S.lock:
        for _ in range(times):
            S.faults.setdefault(function, []).append(dict(error=error, retcode=retcode, message=message,
                                                          executed=executed, visible_after=visible_after,
                                                          fill_after=fill_after))


def fake_set_account(*, margin_mode: int | None = None, fifo_close: bool | None = None,
                     hedge_prohibited: bool | None = None, limit_positions: int | None = None) -> None:
    """The account model: margin_mode 0 netting, 1 exchange (netting), 2 hedging; FIFO close; a hedging
    account whose broker refuses opposite positions (10046); a cap on open positions (10040)."""
    with S.lock:
        S.margin_mode = S.margin_mode if margin_mode is None else int(margin_mode)
        S.fifo_close = S.fifo_close if fifo_close is None else bool(fifo_close)
        S.hedge_prohibited = S.hedge_prohibited if hedge_prohibited is None else bool(hedge_prohibited)
        S.limit_positions = limit_positions


def fake_set_symbol(symbol: str, *, trade_mode: int | None = None, freeze_level: int | None = None,
                    stops_level: int | None = None, volume_step: float | None = None) -> None:
    """Change a symbol's rules while running (rollover, weekend, a broker decision)."""
    with S.lock:
        spec = S.symbols[symbol]
        for key, value in (("trade_mode", trade_mode), ("freeze_level", freeze_level),
                           ("stops_level", stops_level), ("volume_step", volume_step)):
            if value is not None:
                spec[key] = value


def fake_reopen(ticket: int) -> int:
    """A service operation (swap charged by re-opening): the position gets a new ticket, keeps its identifier."""
    with S.lock:
        p = S.positions.pop(ticket)
        new = _ticket()
        S.positions[new] = dict(p, ticket=new)
        return new


def fake_rewrite_comment(ticket: int, comment: str) -> None:
    """A broker rewriting a position's comment ([sl ...], [tp ...], partial-close suffixes, a cut)."""
    with S.lock:
        S.positions[ticket]["comment"] = comment[:31]


def fake_deposit(amount: float, when: int) -> None:
    """A balance deal (no symbol), like the deposit that usually opens an account's history."""
    with S.lock:
        S.balance += amount
        S.deals.append(dict(ticket=_ticket(), order=0, time=when, time_msc=when * 1000, type=DEAL_TYPE_BALANCE,
                            entry=DEAL_ENTRY_IN, magic=0, position_id=0, reason=DEAL_REASON_CLIENT, volume=0.0,
                            price=0.0, commission=0.0, swap=0.0, profit=amount, fee=0.0, symbol="",
                            comment="deposit", external_id=""))


def fake_set_market_closed(symbol: str, closed: bool = True) -> None:
    with S.lock:
        (S.closed.add if closed else S.closed.discard)(symbol)


def fake_set_terminal(*, algo_trading: bool | None = None, result_prices: bool | None = None,
                      liquidity: dict[str, float] | None = None, **account: bool) -> None:
    """`algo_trading`: the toolbar's "Algo Trading" button (off: every order comes back 10027).
    `result_prices` off: results carry price 0, as under market execution, where the server may answer
    before the deal exists ("can fill in the deal or order field values ... if it is aware of these").
    `liquidity`: symbol -> lots an IOC order fills at most (10010 DONE_PARTIAL, the rest cancelled).
    `account`: account_info's `trade_allowed` (off with an investor login: 10017) / `trade_expert` (10026)."""
    with S.lock:
        S.liquidity.update(liquidity or {})
        S.account.update({k: bool(v) for k, v in account.items() if k in S.account})
        S.algo_trading = S.algo_trading if algo_trading is None else algo_trading
        S.result_prices = S.result_prices if result_prices is None else result_prices


def fake_set_stale(symbol: str, stale: bool = True) -> None:
    with S.lock:
        (S.stale.add if stale else S.stale.discard)(symbol)


def fake_state() -> dict[str, Any]:
    with S.lock:
        return dict(init_calls=S.init_calls, requests=[dict(r) for r in S.requests], selected=sorted(S.selected),
                    positions=len(S.positions), balance=S.balance)


