"""The fake MetaTrader5's trade server: account state, quotes from replayed bars, validation, booking.

Split from fake_mt5.py (which holds the package's API functions and the test controls and re-exports
what tests reach for, `S` and `_bar`). Everything here runs under `S.lock`.
"""
# ruff: noqa: F403, F405
from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .mt5_constants import *
from .mt5_constants import _TF_SECONDS


class _Server:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self, balance: float = 10_000.0, server_offset_hours: float = 0.0, leverage: int = 100) -> None:
        self.initialized = False
        self.init_calls = 0
        self.last_error = (RES_S_OK, "Success")
        self.symbols: dict[str, dict[str, Any]] = {}
        self.rates: dict[tuple[str, int], np.ndarray] = {}
        self.base_tf: dict[str, int] = {}
        self.cursor: dict[str, int] = {}
        self.selected: set[str] = set()
        self.closed: set[str] = set()
        self.stale: set[str] = set()
        self.positions: dict[int, dict[str, Any]] = {}
        self.deals: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.faults: dict[str, list[dict[str, Any]]] = {}
        self.hidden: dict[int, int] = {}  # position ticket -> positions_get calls it stays invisible
        self.hidden_deals: dict[int, int] = {}  # position identifier -> history_deals_get calls its deals stay unseen
        self.balance = float(balance)
        self.leverage = leverage
        self.offset = int(server_offset_hours * 3600)
        self.next_ticket = 500_001
        self.algo_trading = True  # the terminal's "Algo Trading" button
        # account_info's trade_allowed, trade_expert (in that order): the account's own trade permissions
        self.account = {"trade_allowed": True, "trade_expert": True}
        self.result_prices = True  # False: results carry no price (market execution: see the deal)
        self.liquidity: dict[str, float] = {}  # symbol -> lots one IOC order can fill (the rest is cancelled)
        # the account model (docs: ENUM_ACCOUNT_MARGIN_MODE; ACCOUNT_FIFO_CLOSE): 0 netting, 1 exchange, 2 hedging
        self.margin_mode = ACCOUNT_MARGIN_MODE_RETAIL_HEDGING
        self.fifo_close = False
        self.hedge_prohibited = False  # a hedging account whose broker refuses opposite positions (10046)
        self.limit_positions: int | None = None  # open positions the account may hold (10040 beyond)
        # orders answered 10008 PLACED and filled later: [api calls left, request, order ticket]
        self.placed: list[list[Any]] = []


S = _Server()


def _fault(function: str) -> dict[str, Any] | None:
    queue = S.faults.get(function)
    return queue.pop(0) if queue else None


def _fail(code: int, message: str) -> None:
    S.last_error = (code, message)
    return None


def _ok() -> None:
    S.last_error = (RES_S_OK, "Success")


def _ticket() -> int:
    S.next_ticket += 1
    return S.next_ticket


def _bar(symbol: str) -> np.void:
    return S.rates[(symbol, S.base_tf[symbol])][S.cursor[symbol]]


def _quote(symbol: str) -> tuple[float, float, int]:
    bar = _bar(symbol)
    spec = S.symbols[symbol]
    bid = float(bar["open"])
    spread = int(bar["spread"]) or spec["spread"]
    return bid, round(bid + spread * spec["point"], spec["digits"] + 2), int(bar["time"])


def _book_out(p: dict[str, Any], volume: float, price: float, reason: int, when: int, comment: str,
              order: int | None = None, magic: int | None = None) -> int:
    spec = S.symbols[p["symbol"]]
    sign = 1 if p["type"] == POSITION_TYPE_BUY else -1
    profit = round(sign * (price - p["price_open"]) * volume * spec["contract_size"], 2)
    deal = _ticket()
    S.deals.append(dict(ticket=deal, order=order or deal, time=when, time_msc=when * 1000, type=1 - p["type"],
                        entry=DEAL_ENTRY_OUT, magic=p["magic"] if magic is None else magic,
                        position_id=p["identifier"], reason=reason,
                        volume=volume, price=price, commission=0.0, swap=0.0, profit=profit, fee=0.0,
                        symbol=p["symbol"], comment=comment, external_id=""))
    S.balance += profit
    p["volume"] = round(p["volume"] - volume, 8)
    if p["volume"] <= 1e-9:
        del S.positions[p["ticket"]]
    return deal


def _check_stops(symbol: str, bar: np.void) -> None:
    spec = S.symbols[symbol]
    spread = (int(bar["spread"]) or spec["spread"]) * spec["point"]
    when = int(bar["time"]) + _TF_SECONDS[S.base_tf[symbol]]
    for p in [p for p in S.positions.values() if p["symbol"] == symbol]:
        o, h, lo = float(bar["open"]), float(bar["high"]), float(bar["low"])
        if p["type"] == POSITION_TYPE_SELL:
            o, h, lo = o + spread, h + spread, lo + spread
        sl, tp = p["sl"], p["tp"]
        if p["type"] == POSITION_TYPE_BUY:
            if sl and lo <= sl:
                _book_out(p, p["volume"], min(o, sl), DEAL_REASON_SL, when, f"[sl {sl:.{spec['digits']}f}]")
            elif tp and h >= tp:
                _book_out(p, p["volume"], max(o, tp), DEAL_REASON_TP, when, f"[tp {tp:.{spec['digits']}f}]")
        else:
            if sl and h >= sl:
                _book_out(p, p["volume"], max(o, sl), DEAL_REASON_SL, when, f"[sl {sl:.{spec['digits']}f}]")
            elif tp and lo <= tp:
                _book_out(p, p["volume"], min(o, tp), DEAL_REASON_TP, when, f"[tp {tp:.{spec['digits']}f}]")


def _result(retcode: int, request: dict[str, Any], comment: str, *, deal: int = 0, order: int = 0,
            volume: float = 0.0, price: float = 0.0, bid: float = 0.0, ask: float = 0.0) -> OrderSendResult:
    req = TradeRequest(**{k: request.get(k, 0 if k not in ("symbol", "comment") else "") for k in TradeRequest._fields})
    if not S.result_prices:
        price = 0.0
    return OrderSendResult(retcode, deal, order, volume, price, bid, ask, comment, 1, 0, req)


def _allowed_fillings(mode: int) -> set[int]:
    out = set()
    if mode & 1:
        out.add(ORDER_FILLING_FOK)
    if mode & 2:
        out.add(ORDER_FILLING_IOC)
    return out or {ORDER_FILLING_RETURN}


def _off_grid(price: float, tick: float) -> bool:
    return bool(price) and abs(price / tick - round(price / tick)) > 1e-6


def _stops_bad(spec, side: int, sl: float, tp: float, bid: float, ask: float) -> bool:
    if _off_grid(sl, spec["tick_size"]) or _off_grid(tp, spec["tick_size"]):
        return True
    ref = bid if side == ORDER_TYPE_BUY else ask
    dist = spec["stops_level"] * spec["point"] - 1e-9
    if side == ORDER_TYPE_BUY:
        wrong = (sl and sl >= ref) or (tp and tp <= ref)
    else:
        wrong = (sl and sl <= ref) or (tp and tp >= ref)
    close = any(level and abs(ref - level) < dist for level in (sl, tp))
    return bool(wrong or close)


def _exposure() -> tuple[float, float]:
    """Floating profit and used margin of the open positions (at leverage, on the entry price)."""
    floating = margin = 0.0
    for p in S.positions.values():
        spec = S.symbols[p["symbol"]]
        bid, ask, _ = _quote(p["symbol"])
        px = bid if p["type"] == POSITION_TYPE_BUY else ask
        floating += (1 if p["type"] == 0 else -1) * (px - p["price_open"]) * p["volume"] * spec["contract_size"]
        margin += p["volume"] * spec["contract_size"] * p["price_open"] / S.leverage
    return floating, margin


def _frozen(spec, p: dict[str, Any], bid: float, ask: float) -> bool:
    """Within the freeze distance of the position's SL/TP (docs: SYMBOL_TRADE_FREEZE_LEVEL)."""
    dist = spec.get("freeze_level", 0) * spec["point"]
    if dist <= 0:
        return False
    ref = bid if p["type"] == POSITION_TYPE_BUY else ask
    return any(level and abs(ref - level) <= dist + 1e-12 for level in (p["sl"], p["tp"]))


def _entry_refusal(spec, side: int) -> tuple[int, str] | None:
    mode = spec["trade_mode"]
    if mode == SYMBOL_TRADE_MODE_DISABLED:
        return TRADE_RETCODE_TRADE_DISABLED, "Trade disabled"
    if mode == SYMBOL_TRADE_MODE_CLOSEONLY:
        return TRADE_RETCODE_CLOSE_ONLY, "Only position closing is allowed"
    if mode == SYMBOL_TRADE_MODE_LONGONLY and side != ORDER_TYPE_BUY:
        return TRADE_RETCODE_LONG_ONLY, "Only long positions are allowed"
    if mode == SYMBOL_TRADE_MODE_SHORTONLY and side != ORDER_TYPE_SELL:
        return TRADE_RETCODE_SHORT_ONLY, "Only short positions are allowed"
    return None


def _netting() -> bool:
    return S.margin_mode != ACCOUNT_MARGIN_MODE_RETAIL_HEDGING


def _execute(request: dict[str, Any], order: int | None = None) -> OrderSendResult | None:
    """The trade server proper: validate like MT5 does, then book. `order`: a ticket given in advance
    (an order answered PLACED and filled later keeps the ticket it was answered with)."""
    with S.lock:
        symbol = request.get("symbol")
        if symbol not in S.symbols:
            return _fail(RES_E_INVALID_PARAMS, f'Invalid "symbol" argument: {symbol!r}')
        spec = S.symbols[symbol]
        bid, ask, t = _quote(symbol)
        _ok()
        if not S.algo_trading:
            return _result(TRADE_RETCODE_CLIENT_DISABLES_AT, request, "AutoTrading disabled by client", bid=bid,
                           ask=ask)
        if not S.account["trade_allowed"]:  # logged in with the investor password
            return _result(TRADE_RETCODE_TRADE_DISABLED, request, "Trade disabled", bid=bid, ask=ask)
        if not S.account["trade_expert"]:
            return _result(TRADE_RETCODE_SERVER_DISABLES_AT, request, "AutoTrading disabled by server", bid=bid,
                           ask=ask)
        if symbol in S.closed:
            return _result(TRADE_RETCODE_MARKET_CLOSED, request, "Market closed", bid=bid, ask=ask)
        action = request.get("action")
        if action == TRADE_ACTION_SLTP:
            p = S.positions.get(request.get("position", 0))
            if p is None:
                return _result(TRADE_RETCODE_POSITION_CLOSED, request, "Position doesn't exist")
            if _frozen(spec, p, bid, ask):
                return _result(TRADE_RETCODE_FROZEN, request, "Order or position frozen", bid=bid, ask=ask)
            sl, tp = float(request.get("sl", 0.0)), float(request.get("tp", 0.0))
            if _stops_bad(spec, p["type"], sl, tp, bid, ask):
                return _result(TRADE_RETCODE_INVALID_STOPS, request, "Invalid stops", bid=bid, ask=ask)
            p["sl"], p["tp"] = sl, tp
            return _result(TRADE_RETCODE_DONE, request, "Request executed", bid=bid, ask=ask)
        if action != TRADE_ACTION_DEAL:
            return _result(TRADE_RETCODE_INVALID, request, "Invalid request")
        side = request.get("type")
        volume = float(request.get("volume", 0.0))
        steps = volume / spec["volume_step"]
        if volume < spec["volume_min"] - 1e-9 or volume > spec["volume_max"] + 1e-9 or abs(steps - round(steps)) > 1e-6:
            return _result(TRADE_RETCODE_INVALID_VOLUME, request, "Invalid volume", bid=bid, ask=ask)
        if request.get("type_filling", ORDER_FILLING_FOK) not in _allowed_fillings(spec["filling_mode"]):
            return _result(TRADE_RETCODE_INVALID_FILL, request, "Unsupported filling mode", bid=bid, ask=ask)
        liquidity = S.liquidity.get(symbol)
        cut = request.get("type_filling") == ORDER_FILLING_IOC and liquidity is not None and volume > liquidity
        done = TRADE_RETCODE_DONE_PARTIAL if cut else TRADE_RETCODE_DONE
        volume = min(volume, liquidity) if cut else volume
        price = ask if side == ORDER_TYPE_BUY else bid
        wanted = float(request.get("price", 0.0))
        if wanted and abs(wanted - price) > int(request.get("deviation", 0)) * spec["point"] + 1e-9:
            return _result(TRADE_RETCODE_REQUOTE, request, "Requote", bid=bid, ask=ask)
        pos_ticket = int(request.get("position", 0))
        if pos_ticket:
            p = S.positions.get(pos_ticket)
            if p is None:
                return _result(TRADE_RETCODE_POSITION_CLOSED, request, "Position doesn't exist")
            if spec["trade_mode"] == SYMBOL_TRADE_MODE_DISABLED:
                return _result(TRADE_RETCODE_TRADE_DISABLED, request, "Trade disabled", bid=bid, ask=ask)
            if side == p["type"] or volume > p["volume"] + 1e-9:
                return _result(TRADE_RETCODE_INVALID_CLOSE_VOLUME if side != p["type"] else TRADE_RETCODE_INVALID_VOLUME,
                               request, "Invalid volume", bid=bid, ask=ask)
            if S.fifo_close and any(o["symbol"] == symbol and (o["time"], o["ticket"]) < (p["time"], p["ticket"])
                                    for o in S.positions.values()):
                return _result(TRADE_RETCODE_FIFO_CLOSE, request, "Position closing is allowed only by FIFO rule",
                               bid=bid, ask=ask)
            if _frozen(spec, p, bid, ask):
                return _result(TRADE_RETCODE_FROZEN, request, "Order or position frozen", bid=bid, ask=ask)
            oid = order or _ticket()
            deal = _book_out(p, volume, price, DEAL_REASON_EXPERT, t, str(request.get("comment", ""))[:31], order=oid)
            return _result(done, request, "Request executed", deal=deal, order=oid, volume=volume,
                           price=price, bid=bid, ask=ask)
        refused = _entry_refusal(spec, side)
        if refused:
            return _result(refused[0], request, refused[1], bid=bid, ask=ask)
        sl, tp = float(request.get("sl", 0.0)), float(request.get("tp", 0.0))
        if _stops_bad(spec, side, sl, tp, bid, ask):
            return _result(TRADE_RETCODE_INVALID_STOPS, request, "Invalid stops", bid=bid, ask=ask)
        held = [p for p in S.positions.values() if p["symbol"] == symbol]
        if not _netting() and S.hedge_prohibited and any(p["type"] != side for p in held):
            return _result(TRADE_RETCODE_HEDGE_PROHIBITED, request, "Opposite positions on a single symbol are disabled",
                           bid=bid, ask=ask)
        if S.limit_positions is not None and len(S.positions) >= S.limit_positions and not (_netting() and held):
            return _result(TRADE_RETCODE_LIMIT_POSITIONS, request, "The number of open positions reached the limit",
                           bid=bid, ask=ask)
        floating, margin = _exposure()
        if volume * spec["contract_size"] * price / S.leverage > S.balance + floating - margin:
            return _result(TRADE_RETCODE_NO_MONEY, request, "No money", bid=bid, ask=ask)
        oid = order or _ticket()
        magic, comment = int(request.get("magic", 0)), str(request.get("comment", ""))[:31]
        if _netting() and held:
            return _net_into(held[0], request, oid, side, volume, price, t, magic, comment, done, bid, ask)
        S.positions[oid] = dict(ticket=oid, identifier=oid, symbol=symbol, type=side, volume=volume,
                                price_open=price, sl=sl, tp=tp, magic=magic, comment=comment, time=t)
        deal = _ticket()
        S.deals.append(dict(ticket=deal, order=oid, time=t, time_msc=t * 1000, type=side, entry=DEAL_ENTRY_IN,
                            magic=magic, position_id=oid, reason=DEAL_REASON_EXPERT, volume=volume, price=price,
                            commission=0.0, swap=0.0, profit=0.0, fee=0.0, symbol=symbol, comment=comment,
                            external_id=""))
        return _result(done, request, "Request executed", deal=deal, order=oid, volume=volume,
                       price=price, bid=bid, ask=ask)


def _net_into(p: dict[str, Any], request: dict[str, Any], oid: int, side: int, volume: float, price: float, t: int,
              magic: int, comment: str, done: int, bid: float, ask: float) -> OrderSendResult:
    """A netting account: an entry lands in the symbol's one position (docs, POSITION_IDENTIFIER: on a
    reversal the identifier stays and the ticket becomes the reversing order's)."""
    if side == p["type"]:  # adds to it: volume-weighted open price, the first position's identifier
        total = round(p["volume"] + volume, 8)
        p["price_open"] = round((p["price_open"] * p["volume"] + price * volume) / total, 8)
        p["volume"] = total
        sl, tp = float(request.get("sl", 0.0)), float(request.get("tp", 0.0))
        p["sl"], p["tp"] = sl or p["sl"], tp or p["tp"]
        deal = _ticket()
        S.deals.append(dict(ticket=deal, order=oid, time=t, time_msc=t * 1000, type=side, entry=DEAL_ENTRY_IN,
                            magic=magic, position_id=p["identifier"], reason=DEAL_REASON_EXPERT, volume=volume,
                            price=price, commission=0.0, swap=0.0, profit=0.0, fee=0.0, symbol=p["symbol"],
                            comment=comment, external_id=""))
    elif volume <= p["volume"] + 1e-9:  # reduces (or closes) it
        deal = _book_out(p, volume, price, DEAL_REASON_EXPERT, t, comment, order=oid, magic=magic)
    else:  # reverses it: one INOUT deal, the rest opens the other way under the same identifier
        rest = round(volume - p["volume"], 8)
        spec = S.symbols[p["symbol"]]
        sign = 1 if p["type"] == POSITION_TYPE_BUY else -1
        profit = round(sign * (price - p["price_open"]) * p["volume"] * spec["contract_size"], 2)
        deal = _ticket()
        S.deals.append(dict(ticket=deal, order=oid, time=t, time_msc=t * 1000, type=side, entry=DEAL_ENTRY_INOUT,
                            magic=magic, position_id=p["identifier"], reason=DEAL_REASON_EXPERT, volume=volume,
                            price=price, commission=0.0, swap=0.0, profit=profit, fee=0.0, symbol=p["symbol"],
                            comment=comment, external_id=""))
        S.balance += profit
        del S.positions[p["ticket"]]
        S.positions[oid] = dict(p, ticket=oid, type=side, volume=rest, price_open=price,
                                sl=float(request.get("sl", 0.0)), tp=float(request.get("tp", 0.0)), time=t)
    return _result(done, request, "Request executed", deal=deal, order=oid, volume=volume, price=price,
                   bid=bid, ask=ask)


def _run_placed() -> None:
    """Orders answered PLACED fill once their countdown (API calls) runs out."""
    for item in list(S.placed):
        item[0] -= 1
        if item[0] <= 0:
            S.placed.remove(item)
            # the server accepted it: it fills at the market then, whatever price the request named
            _execute(dict(item[1], price=0.0), order=item[2])
