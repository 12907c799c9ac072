"""MetaTrader5's constants, named tuples and rates dtype, as the real package defines them.

Split from fake_mt5.py (which re-exports all of it, as the real module's namespace does). Values were
checked against the MetaQuotes Python documentation.
"""
from __future__ import annotations

import pickle
from collections import namedtuple as _namedtuple

import numpy as np

# --- constants (MetaTrader5 values) ------------------------------------------------------------------
TIMEFRAME_M1, TIMEFRAME_M5, TIMEFRAME_M15, TIMEFRAME_M30 = 1, 5, 15, 30
TIMEFRAME_H1, TIMEFRAME_H4, TIMEFRAME_D1 = 16385, 16388, 16408
TIMEFRAME_W1, TIMEFRAME_MN1 = 32769, 49153
_TF_SECONDS = {1: 60, 5: 300, 15: 900, 30: 1800, 16385: 3600, 16388: 14400, 16408: 86400}

ORDER_TYPE_BUY, ORDER_TYPE_SELL = 0, 1
POSITION_TYPE_BUY, POSITION_TYPE_SELL = 0, 1
DEAL_TYPE_BUY, DEAL_TYPE_SELL, DEAL_TYPE_BALANCE = 0, 1, 2
DEAL_ENTRY_IN, DEAL_ENTRY_OUT, DEAL_ENTRY_INOUT, DEAL_ENTRY_OUT_BY = 0, 1, 2, 3
DEAL_REASON_CLIENT, DEAL_REASON_MOBILE, DEAL_REASON_WEB, DEAL_REASON_EXPERT = 0, 1, 2, 3
DEAL_REASON_SL, DEAL_REASON_TP, DEAL_REASON_SO = 4, 5, 6
POSITION_REASON_CLIENT, POSITION_REASON_EXPERT = 0, 3
TRADE_ACTION_DEAL, TRADE_ACTION_PENDING, TRADE_ACTION_SLTP = 1, 5, 6
TRADE_ACTION_MODIFY, TRADE_ACTION_REMOVE, TRADE_ACTION_CLOSE_BY = 7, 8, 10
ORDER_FILLING_FOK, ORDER_FILLING_IOC, ORDER_FILLING_RETURN = 0, 1, 2
ORDER_TIME_GTC, ORDER_TIME_DAY = 0, 1
SYMBOL_TRADE_MODE_DISABLED, SYMBOL_TRADE_MODE_CLOSEONLY, SYMBOL_TRADE_MODE_FULL = 0, 3, 4
SYMBOL_TRADE_MODE_LONGONLY, SYMBOL_TRADE_MODE_SHORTONLY = 1, 2
ACCOUNT_TRADE_MODE_DEMO = 0
# ENUM_ACCOUNT_MARGIN_MODE: names from the MQL5 docs; the numbers are the package's (the docs pages print none)
ACCOUNT_MARGIN_MODE_RETAIL_NETTING, ACCOUNT_MARGIN_MODE_EXCHANGE, ACCOUNT_MARGIN_MODE_RETAIL_HEDGING = 0, 1, 2

TRADE_RETCODE_REQUOTE = 10004
TRADE_RETCODE_REJECT = 10006
TRADE_RETCODE_DONE = 10009
TRADE_RETCODE_DONE_PARTIAL = 10010
TRADE_RETCODE_ERROR = 10011
TRADE_RETCODE_TIMEOUT = 10012
TRADE_RETCODE_INVALID = 10013
TRADE_RETCODE_INVALID_VOLUME = 10014
TRADE_RETCODE_INVALID_PRICE = 10015
TRADE_RETCODE_INVALID_STOPS = 10016
TRADE_RETCODE_TRADE_DISABLED = 10017
TRADE_RETCODE_MARKET_CLOSED = 10018
TRADE_RETCODE_NO_MONEY = 10019
TRADE_RETCODE_PRICE_CHANGED = 10020
TRADE_RETCODE_PRICE_OFF = 10021
TRADE_RETCODE_TOO_MANY_REQUESTS = 10024
TRADE_RETCODE_PLACED = 10008
TRADE_RETCODE_NO_CHANGES = 10025
TRADE_RETCODE_FROZEN = 10029
TRADE_RETCODE_INVALID_FILL = 10030
TRADE_RETCODE_SERVER_DISABLES_AT = 10026
TRADE_RETCODE_CLIENT_DISABLES_AT = 10027
TRADE_RETCODE_CONNECTION = 10031
TRADE_RETCODE_POSITION_CLOSED = 10036
TRADE_RETCODE_INVALID_CLOSE_VOLUME = 10038
TRADE_RETCODE_CLOSE_ORDER_EXIST = 10039
TRADE_RETCODE_LIMIT_POSITIONS = 10040
TRADE_RETCODE_LONG_ONLY = 10042
TRADE_RETCODE_SHORT_ONLY = 10043
TRADE_RETCODE_CLOSE_ONLY = 10044
TRADE_RETCODE_FIFO_CLOSE = 10045
TRADE_RETCODE_HEDGE_PROHIBITED = 10046

RES_S_OK, RES_E_FAIL, RES_E_INVALID_PARAMS, RES_E_NOT_FOUND = 1, -1, -2, -4
RES_E_AUTH_FAILED, RES_E_AUTO_TRADING_DISABLED = -6, -8
RES_E_INTERNAL_FAIL_INIT, RES_E_INTERNAL_FAIL_CONNECT, RES_E_INTERNAL_FAIL_TIMEOUT = -10003, -10004, -10005

# --- records (field names as the real package) ------------------------------------------------------
class _ClassOnly:
    """`_fields` readable on the type (tests list the field names) but not on an instance."""

    def __init__(self, value: tuple[str, ...]) -> None:
        self.value = value

    def __get__(self, obj, owner=None):
        if obj is not None:
            raise AttributeError(f"{type(obj).__name__!r} object has no attribute '_fields'")
        return self.value


def namedtuple(name: str, fields: str):  # noqa: F811 - shadows collections.namedtuple on purpose
    """A record like the package's C-extension types: a tuple with `_asdict()`, NO `_fields`, and not
    picklable (pickle cannot find the C type by name, so `rpyc.classic.obtain(record)` fails).

    Code that reads `record._fields` works on collections.namedtuple but fails on the real terminal.
    """
    base = _namedtuple(name, fields)
    names = base._fields

    def _asdict(self) -> dict:
        return dict(zip(names, self, strict=True))

    def _no_pickle(self, protocol=None):
        raise pickle.PicklingError(f"Can't pickle <class '{name}'>: attribute lookup {name} on builtins failed")

    return type(name, (base,), {"__slots__": (), "_fields": _ClassOnly(names), "_asdict": _asdict,
                                "__reduce_ex__": _no_pickle})


Tick = namedtuple("Tick", "time bid ask last volume time_msc flags volume_real")
SymbolInfo = namedtuple("SymbolInfo", (
    "custom chart_mode select visible session_deals session_buy_orders session_sell_orders volume "
    "volumehigh volumelow time digits spread spread_float ticks_bookdepth trade_calc_mode trade_mode "
    "start_time expiration_time trade_stops_level trade_freeze_level trade_exemode swap_mode "
    "swap_rollover3days margin_hedged_use_leg expiration_mode filling_mode order_mode order_gtc_mode "
    "bid bidhigh bidlow ask askhigh asklow last lasthigh lastlow point trade_tick_value "
    "trade_tick_value_profit trade_tick_value_loss trade_tick_size trade_contract_size volume_min "
    "volume_max volume_step volume_limit swap_long swap_short margin_initial margin_maintenance "
    "currency_base currency_profit currency_margin description path name"))
AccountInfo = namedtuple("AccountInfo", (
    "login trade_mode leverage limit_orders margin_so_mode trade_allowed trade_expert margin_mode "
    "currency_digits fifo_close balance credit profit equity margin margin_free margin_level "
    "margin_so_call margin_so_so margin_initial margin_maintenance assets liabilities commission_blocked "
    "name server currency company"))
TerminalInfo = namedtuple("TerminalInfo", "community_account connected trade_allowed build name path")
TradePosition = namedtuple("TradePosition", (
    "ticket time time_msc time_update time_update_msc type magic identifier reason volume price_open "
    "sl tp price_current swap profit symbol comment external_id"))
TradeDeal = namedtuple("TradeDeal", (
    "ticket order time time_msc type entry magic position_id reason volume price commission swap profit "
    "fee symbol comment external_id"))
TradeRequest = namedtuple("TradeRequest", (
    "action magic order symbol volume price stoplimit sl tp deviation type type_filling type_time "
    "expiration comment position position_by"))
OrderCheckResult = namedtuple("OrderCheckResult", (
    "retcode balance equity profit margin margin_free margin_level comment request"))
OrderSendResult = namedtuple("OrderSendResult", (
    "retcode deal order volume price bid ask comment request_id retcode_external request"))

RATES_DTYPE = np.dtype([("time", "<i8"), ("open", "<f8"), ("high", "<f8"), ("low", "<f8"), ("close", "<f8"),
                        ("tick_volume", "<u8"), ("spread", "<i4"), ("real_volume", "<u8")])
