"""The broker port: the only way execution, monitoring and the data feed reach a broker.

PaperBroker and MT5Broker both implement `Broker`. Values crossing this port are plain pydantic
models and numpy candle arrays, never broker-native objects (an RPyC proxy must not leak into core).
Failures are typed `BrokerError`s carrying the broker's retcode, so retry policy can be decided on the
code rather than on message text.
"""
from __future__ import annotations

from enum import IntEnum
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from core.domain.timeframes import Timeframe


class _Plain(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# ENUM_ACCOUNT_MARGIN_MODE as the MetaTrader5 package reports it in account_info().margin_mode. The MQL5
# docs (Account Properties; "Account type: netting or hedging") name the three modes but print no numbers
# on those pages; 0/1/2 are the package's values (mt5.ACCOUNT_MARGIN_MODE_RETAIL_NETTING == 0 ...).
MARGIN_MODE_NETTING, MARGIN_MODE_EXCHANGE, MARGIN_MODE_HEDGING = 0, 1, 2
ACCOUNT_MODES = {MARGIN_MODE_NETTING: "netting", MARGIN_MODE_EXCHANGE: "exchange (netting)",
                 MARGIN_MODE_HEDGING: "hedging"}


class AccountInfo(_Plain):
    login: int = 0
    balance: float
    equity: float
    margin_free: float = 0.0
    currency: str = "USD"
    leverage: int = 100
    server: str = ""
    margin_mode: int = MARGIN_MODE_HEDGING  # the paper broker hedges: one position per trade
    fifo_close: bool = False  # ACCOUNT_FIFO_CLOSE: positions of a symbol close oldest first

    @property
    def netting(self) -> bool:
        """One position per symbol (RETAIL_NETTING or EXCHANGE): a second entry merges into the first."""
        return self.margin_mode != MARGIN_MODE_HEDGING

    @property
    def mode_name(self) -> str:
        return ACCOUNT_MODES.get(self.margin_mode, f"unknown ({self.margin_mode})")


class SymbolInfo(_Plain):
    name: str
    digits: int
    point: float
    trade_stops_level: int = 0
    trade_freeze_level: int = 0
    volume_min: float = 0.01
    volume_max: float = 100.0
    volume_step: float = 0.01
    filling_mode: int = 1
    trade_mode: int = 4  # SYMBOL_TRADE_MODE_FULL
    trade_contract_size: float = 1.0
    spread: int = 0
    visible: bool = True


class Tick(_Plain):
    time: float
    bid: float
    ask: float
    last: float = 0.0

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2


class Position(_Plain):
    ticket: int
    symbol: str
    type: Literal["buy", "sell"]
    volume: float
    price_open: float
    sl: float
    tp: float
    price_current: float = 0.0
    profit: float = 0.0
    magic: int = 0
    comment: str = ""
    time: float = 0.0
    # POSITION_IDENTIFIER: set at opening, never changes (the ticket can, e.g. at a swap re-open or a netting
    # reversal); every deal of the position carries it as DEAL_POSITION_ID. 0 = the broker has none (paper).
    identifier: int = 0

    @property
    def key(self) -> int:
        """What a trade is keyed by: the identifier where the broker has one, else the ticket."""
        return self.identifier or self.ticket


class Deal(_Plain):
    ticket: int
    order: int = 0
    position_id: int
    symbol: str
    type: Literal["buy", "sell"]
    entry: Literal["in", "out", "inout"]
    volume: float
    price: float
    profit: float = 0.0
    commission: float = 0.0
    swap: float = 0.0
    magic: int = 0
    comment: str = ""
    time: float
    reason: Literal["client", "sl", "tp", "so", "expert"] = "client"


class OrderResult(_Plain):
    retcode: int
    order: int = 0
    deal: int = 0
    position: int = 0
    price: float = 0.0
    volume: float = 0.0
    comment: str = ""
    requested_price: float = 0.0


class OrderRequest(_Plain):
    symbol: str
    side: Literal["buy", "sell"]
    volume: float = Field(gt=0)
    sl: float = 0.0
    tp: float = 0.0
    price: float | None = None
    deviation: int = 20
    magic: int = 0
    comment: str = ""


class Retcode(IntEnum):
    """MT5 trade-server return codes that matter to us (values are MT5's own)."""

    DONE = 10009
    REQUOTE = 10004
    REJECT = 10006
    CANCEL = 10007
    PLACED = 10008
    DONE_PARTIAL = 10010
    ERROR = 10011
    TIMEOUT = 10012
    INVALID = 10013
    INVALID_VOLUME = 10014
    INVALID_PRICE = 10015
    INVALID_STOPS = 10016
    TRADE_DISABLED = 10017
    MARKET_CLOSED = 10018
    NO_MONEY = 10019
    PRICE_CHANGED = 10020
    PRICE_OFF = 10021
    FROZEN = 10029
    INVALID_FILL = 10030
    CONNECTION = 10031
    TOO_MANY_REQUESTS = 10024
    NO_CHANGES = 10025
    POSITION_CLOSED = 10036
    INVALID_CLOSE_VOLUME = 10038
    CLOSE_ORDER_EXIST = 10039
    LIMIT_POSITIONS = 10040
    LONG_ONLY = 10042
    SHORT_ONLY = 10043
    CLOSE_ONLY = 10044
    FIFO_CLOSE = 10045
    HEDGE_PROHIBITED = 10046


class BrokerError(Exception):
    """A broker refused or failed. `code` is the MT5 retcode or last_error code; `retryable` guides policy."""

    retryable = False

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message


class RequoteError(BrokerError):
    retryable = True


class PriceChangedError(BrokerError):
    retryable = True


class InvalidStopsError(BrokerError):
    pass


class InvalidVolumeError(BrokerError):
    pass


class MarketClosedError(BrokerError):
    pass


class NoMoneyError(BrokerError):
    pass


class InvalidFillError(BrokerError):
    pass


class BrokerConnectionError(BrokerError):
    retryable = True


class BrokerTimeoutError(BrokerError):
    retryable = True


class TooManyRequestsError(BrokerError):
    retryable = True


class PositionNotFoundError(BrokerError):
    pass


class FrozenError(BrokerError):
    """10029 FROZEN, or our own freeze-level check: the price is too near the SL/TP to change it. Not a
    failure: "not now", tried again next cycle."""

    retryable = True


class RefusedError(BrokerError):
    """The account or symbol does not allow this order now (trade mode, close only, FIFO, hedging
    prohibited, position limit, order_check): nothing was sent or nothing executed; the text says why."""


class InvalidCloseVolumeError(BrokerError):
    """10038: the close volume no longer matches the position (changed meanwhile); re-read and resend."""

    retryable = True


class CloseOrderExistsError(BrokerError):
    """10039: a close order for this position is already working; nothing new is sent."""


class UnknownSymbolError(BrokerError):
    pass


class StaleQuoteError(BrokerError):
    """The last tick is too old to price an order on (feed stalled, or the market just closed)."""

    retryable = True


RETCODE_ERRORS: dict[int, type[BrokerError]] = {
    Retcode.REQUOTE: RequoteError,
    Retcode.PRICE_CHANGED: PriceChangedError,
    Retcode.PRICE_OFF: PriceChangedError,
    Retcode.INVALID_STOPS: InvalidStopsError,
    Retcode.INVALID_VOLUME: InvalidVolumeError,
    Retcode.MARKET_CLOSED: MarketClosedError,
    Retcode.NO_MONEY: NoMoneyError,
    Retcode.INVALID_FILL: InvalidFillError,
    Retcode.CONNECTION: BrokerConnectionError,
    Retcode.TIMEOUT: BrokerTimeoutError,
    Retcode.TOO_MANY_REQUESTS: TooManyRequestsError,
    Retcode.FROZEN: FrozenError,
    Retcode.POSITION_CLOSED: PositionNotFoundError,
    Retcode.INVALID_CLOSE_VOLUME: InvalidCloseVolumeError,
    Retcode.CLOSE_ORDER_EXIST: CloseOrderExistsError,
    Retcode.LIMIT_POSITIONS: RefusedError,
    Retcode.LONG_ONLY: RefusedError,
    Retcode.SHORT_ONLY: RefusedError,
    Retcode.CLOSE_ONLY: RefusedError,
    Retcode.FIFO_CLOSE: RefusedError,
    Retcode.HEDGE_PROHIBITED: RefusedError,
}

# what a trader reads for a refusal whose MT5 comment does not say what to do (docs: Trade Server Return Codes)
REFUSAL_TEXT = {
    Retcode.FROZEN: "the price is inside the broker's freeze distance of the stop/target; trying again next cycle",
    Retcode.LIMIT_POSITIONS: "the account has reached the broker's limit of open positions",
    Retcode.LONG_ONLY: "the broker allows only buy positions on this symbol now",
    Retcode.SHORT_ONLY: "the broker allows only sell positions on this symbol now",
    Retcode.CLOSE_ONLY: "the broker allows only closing positions on this symbol now (close-only mode)",
    Retcode.FIFO_CLOSE: "this account closes positions oldest first (FIFO): an older position on this symbol "
                        "must be closed first",
    Retcode.HEDGE_PROHIBITED: "this account does not allow opposite positions on one symbol (hedging prohibited)",
    Retcode.CLOSE_ORDER_EXIST: "a close order for this position is already working at the broker",
    Retcode.INVALID_CLOSE_VOLUME: "the position's volume changed; the close is resent with its current volume",
}


# ENUM_SYMBOL_TRADE_MODE (MQL5 book "Trading permission" lists these values)
TRADE_MODE_DISABLED, TRADE_MODE_LONGONLY, TRADE_MODE_SHORTONLY, TRADE_MODE_CLOSEONLY, TRADE_MODE_FULL = 0, 1, 2, 3, 4
TRADE_MODE_TEXT = {TRADE_MODE_DISABLED: "trading is disabled for this symbol",
                   TRADE_MODE_LONGONLY: "the broker allows only buy positions on this symbol",
                   TRADE_MODE_SHORTONLY: "the broker allows only sell positions on this symbol",
                   TRADE_MODE_CLOSEONLY: "the broker allows only closing positions on this symbol (close-only)"}


def trade_mode_refusal(mode: int, side: str) -> str | None:
    """Why the symbol's trade mode refuses a new `side` entry; None when it allows it."""
    if mode == TRADE_MODE_FULL or (mode == TRADE_MODE_LONGONLY and side == "buy") \
            or (mode == TRADE_MODE_SHORTONLY and side == "sell"):
        return None
    return TRADE_MODE_TEXT.get(mode, f"the symbol's trade mode ({mode}) does not allow new entries")


def netting_refusal(symbol: str, held: list[Position], magic: int) -> str:
    """Why a netting account takes no second entry on `symbol`: it would merge into the open position
    (one position per symbol: a second entry adds to it, an opposite one reduces or reverses it)."""
    p = held[0]
    whose = "one of mine" if p.magic == magic and magic else "not opened by me"
    return (f"this is a netting account (one position per symbol) and {symbol} already has an open position "
            f"({p.type} {p.volume:g} lot, ticket {p.ticket}, {whose}); a new order would merge into it, so "
            "nothing was sent")


def error_for_retcode(code: int, message: str) -> BrokerError:
    return RETCODE_ERRORS.get(code, BrokerError)(message, code)


# MT5 truncates order comments to 31 characters: an id that does not fit cannot be found again.
MT5_COMMENT_MAX = 31


def fit_comment(text: str) -> str:
    """Refuse (rather than silently truncate) a comment the broker would cut: it carries our ids."""
    if len(text) > MT5_COMMENT_MAX:
        raise ValueError(f"order comment {text!r} is {len(text)} chars; MT5 keeps only {MT5_COMMENT_MAX}")
    return text


@runtime_checkable
class Broker(Protocol):
    """What core needs from a broker. Implementations: PaperBroker, MT5Broker."""

    name: str

    def connect(self) -> None: ...

    def close(self) -> None: ...

    def is_connected(self) -> bool: ...

    def account_info(self) -> AccountInfo: ...

    def symbol_info(self, symbol: str) -> SymbolInfo: ...

    def tick(self, symbol: str) -> Tick: ...

    def candles(self, symbol: str, timeframe: Timeframe, count: int) -> np.ndarray:
        """The last `count` *closed* bars (CANDLE_DTYPE), oldest first."""
        ...

    def positions(self, symbol: str | None = None, magic: int | None = None) -> list[Position]: ...

    def market_order(self, request: OrderRequest) -> OrderResult: ...

    def modify_sltp(self, ticket: int, sl: float, tp: float) -> OrderResult: ...

    def close_position(self, ticket: int, volume: float | None = None, deviation: int = 20, comment: str = "") -> OrderResult: ...

    def history_deals(self, position_id: int | None = None, since: float | None = None) -> list[Deal]: ...

    def now(self) -> float:
        """The broker's current time in epoch seconds UTC (the replay clock for PaperBroker)."""
        ...
