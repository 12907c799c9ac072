"""MT5Broker: the port implemented over any object with the MetaTrader5 module's API.

Where that object comes from is the only platform difference:
- Windows: `import MetaTrader5` (optional extra `mt5`), done lazily in `MT5Broker.local()`.
- Linux: the terminal runs under Wine with an rpyc classic server next to it (pymt5linux / mt5linux):
  `MT5Broker.bridge(host, port)` (`core.brokers.mt5.bridge`: requests built on the far side, a
  restarted Wine side reconnected). Results arrive as proxies, copied at the edge (`mt5_convert`).

Failure policy: per retcode in `core.brokers.mt5.orders` (the table there), trading in
`core.brokers.mt5.trading` (account model, identifier, order_check, freeze level, trade mode). A lost
IPC link on any call re-initialises per `error_handling.mt5_connection_lost` (`max_retries` total
attempts, `retry_interval` before each), at most once per trading operation, then BrokerConnectionError.
Every order carries the magic number and a comment (max 31 chars, enforced: ids must survive).
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from core.brokers.base import (
    AccountInfo,
    BrokerConnectionError,
    BrokerError,
    Deal,
    Position,
    SymbolInfo,
    Tick,
    UnknownSymbolError,
)
from core.brokers.mt5 import convert as cv
from core.brokers.mt5 import terminal as mt5_terminal
from core.brokers.mt5.bridge import BridgeLink
from core.brokers.mt5.orders import (
    DEFAULT_CONFIRM_CHECKS,
    RetryPolicy,
)
from core.brokers.mt5.trading import MT5Trading
from core.domain.clock import Clock, SystemClock
from core.domain.retry import attempts_of, run_sync
from core.domain.timeframes import Timeframe

COPY_TICKS_TRADE = 2  # MetaTrader5.COPY_TICKS_TRADE: ticks with a Last/Volume change (trades)

log = logging.getLogger(__name__)


class _Lost(Exception):
    """A call that failed on the IPC link (its outcome says nothing about the server): reconnect, call again."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


class MT5Broker(MT5Trading):
    name = "mt5"

    def __init__(
        self,
        mt5: Any,
        *,
        login: int | None = None,
        password: str | None = None,
        server: str | None = None,
        path: str | None = None,
        timeout_ms: int = 10_000,
        connection_policy: RetryPolicy = RetryPolicy(3, 5.0),
        order_policy: RetryPolicy = RetryPolicy(2, 1.0),
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
        server_utc_offset_hours: float | None = None,
        max_tick_age: float = 120.0,
        link: BridgeLink | None = None,
        confirm_checks: int = DEFAULT_CONFIRM_CHECKS,
    ) -> None:
        self.mt5 = mt5
        self._init_kwargs = {k: v for k, v in dict(login=login, password=password, server=server,
                                                     timeout=timeout_ms).items() if v is not None}
        self._path = path
        self.connection_policy = connection_policy
        self.order_policy = order_policy
        self.clock = clock or SystemClock()
        self._sleep = sleep
        self.server = cv.ServerOffset(server_utc_offset_hours)
        # last_error() is global terminal state: a call and the read of its error must not interleave
        # with another thread's call (callers use asyncio.to_thread), so calls are serialised.
        self._lock = threading.RLock()
        self.max_tick_age = max_tick_age
        self._selected: set[str] = set()
        self._connected = False
        self._link = link  # the rpyc bridge (None = the package in this Python)
        self._tls = threading.local()  # each thread's last failure (see `_last`)
        self.confirm_checks = confirm_checks  # look-ups of an order whose send outcome is unknown
        self.trading_blocked: str | None = None  # why the terminal refuses orders (see mt5_terminal)
        # the account model, read at every (re)initialisation: a reconnect may land on another account
        self.account: AccountInfo | None = None

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def local(cls, **kwargs: Any) -> MT5Broker:
        """The MetaTrader5 package in this (Windows) Python."""
        import MetaTrader5  # noqa: N813 - optional extra, Windows only

        return cls(MetaTrader5, **kwargs)

    @classmethod
    def bridge(cls, host: str, port: int, module: str = "MetaTrader5", **kwargs: Any) -> MT5Broker:
        """The MetaTrader5 package of a Wine Python, through an rpyc classic server (pymt5linux)."""
        link = BridgeLink(host, port, module)
        return cls(link.mt5, link=link, **kwargs)

    # -- plumbing -----------------------------------------------------------------------------------
    @property
    def _last(self) -> tuple[int, str]:
        """This thread's last failure: another thread's call may land between our call and our read."""
        return getattr(self._tls, "last", (cv.RES_S_OK, ""))

    @_last.setter
    def _last(self, value: tuple[int, str]) -> None:
        self._tls.last = value

    def _last_error(self) -> tuple[int, str]:
        try:
            code, msg = tuple(self.mt5.last_error())
            return int(code), str(msg)
        except Exception as e:  # noqa: BLE001 - the bridge itself is down
            # -10005 (not -10004): we cannot tell whether the preceding call reached the terminal
            return -10005, f"last_error() failed: {e}"

    def _initialize(self) -> bool:
        args = (self._path,) if self._path else ()
        ok, self.mt5 = mt5_terminal.initialize(self.mt5, self._link, args, self._init_kwargs)
        if ok:  # each new terminal session: will it take our orders? which account model does it run?
            self.trading_blocked = mt5_terminal.recheck(self.trading_blocked, mt5_terminal.trading_block(self.mt5))
            self._read_account_mode()
        return ok

    def _read_account_mode(self) -> None:
        """margin_mode (netting / exchange / hedging), fifo_close and currency, at start and on reconnect.
        Unreadable: the last known model stays (an order path that needs it re-reads it)."""
        try:
            raw = self.mt5.account_info()
            info = cv.account_from(cv.to_dict(raw)) if raw is not None else None
        except Exception as e:  # noqa: BLE001 - a check must never cost the connection
            log.info("MT5 account_info() unreadable for the account mode: %s", e)
            return
        if info is None:
            return
        old = self.account
        if old is None or (old.margin_mode, old.fifo_close, old.login) != (info.margin_mode, info.fifo_close, info.login):
            log.warning("MT5 account %s is a %s account%s (%s)", info.login, info.mode_name,
                        ", FIFO close" if info.fifo_close else "", info.currency)
        self.account = info

    @property
    def netting(self) -> bool:
        """One position per symbol on this account (RETAIL_NETTING or EXCHANGE)."""
        return bool(self.account and self.account.netting)

    @property
    def account_mode(self) -> str:
        return self.account.mode_name if self.account else "unknown (not connected yet)"

    def _reconnect(self, why: str, code: int | None) -> None:
        """The connection-lost policy: `max_retries` re-initialisations IN TOTAL, each after `interval`
        (the terminal needs a moment). Worst case: max_retries x interval seconds, then
        BrokerConnectionError. Run through `core.domain.retry.run_sync`, the loop every policy uses."""
        pol = self.connection_policy
        n = attempts_of(pol.max_retries)
        op = getattr(self._tls, "op", None)
        if op is not None:  # one reconnect per trading operation: its worst-case wall time stays bounded
            if op["reconnected"]:
                raise BrokerConnectionError(f"MetaTrader 5 lost again in the same operation ({why})", code)
            op["reconnected"] = True

        def attempt(i: int) -> None:
            log.warning("MT5 connection lost (%s); reconnect %d/%d in %.1fs", why, i + 1, n, pol.interval)
            self._sleep(pol.interval)
            if not self._initialize():
                raise BrokerConnectionError(f"MetaTrader 5 unreachable after {n} attempts ({why})", code)

        try:
            run_sync(n, 0.0, attempt, sleep=lambda _s: None, retry_on=(BrokerConnectionError,))
        except BrokerConnectionError:
            self._connected = False
            raise
        self._selected.clear()  # a fresh terminal session has its own Market Watch

    def _call(self, fn: str, *args: Any, **kwargs: Any) -> Any:
        """Call an MT5 function; on an IPC failure reconnect and call again. None = non-IPC failure."""
        with self._lock:
            return self._call_locked(fn, *args, **kwargs)

    def _call_locked(self, fn: str, *args: Any, **kwargs: Any) -> Any:
        """One call and, after an IPC failure, ONE reconnect and one more call (`core.domain.retry.run_sync`:
        2 attempts, the reconnect as the hook before the second)."""
        if not self._connected:
            self.connect()

        def once(_i: int) -> Any:
            try:
                result = getattr(self.mt5, fn)(*args, **kwargs)
            except (EOFError, OSError, ConnectionError) as e:  # the bridge socket itself broke
                result, code, msg = None, -10004, str(e)
            else:
                if result is not None and result is not False:  # symbol_select fails with False
                    return result
                code, msg = self._last_error()
            if code in cv.IPC_ERRORS:
                raise _Lost(code, msg)
            self._last = (code, msg)
            return result

        def reconnect(e: BaseException) -> None:
            assert isinstance(e, _Lost)
            self._reconnect(f"{fn}: {e.msg}", e.code)

        try:
            return run_sync(2, 0.0, once, sleep=lambda _s: None, retry_on=(_Lost,), before_retry=reconnect)
        except _Lost as e:
            raise BrokerConnectionError(f"MT5 {fn}() failed after reconnecting: {e.msg}", e.code) from None

    # -- lifecycle ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _operation(self):
        """One trading operation (an entry, a close with all its parts, an SL/TP change): at most ONE
        reconnect inside it, however many calls fail (see `core.brokers.mt5.orders.worst_case_seconds`)."""
        outer = getattr(self._tls, "op", None)
        if outer is None:
            self._tls.op = {"reconnected": False}
        try:
            yield
        finally:
            if outer is None:
                self._tls.op = None

    def connect(self) -> None:
        """Initialise the terminal session; also done lazily by the first call."""
        with self._lock:
            self._connect()

    def _connect(self) -> None:
        if self._initialize():
            self._connected = True
            return
        code, msg = self._last_error()
        if code in cv.IPC_ERRORS:
            self._reconnect(f"initialize: {msg}", code)
            self._connected = True
            return
        raise BrokerConnectionError(f"MetaTrader 5 initialize failed: {msg} ({code})", code)

    def close(self) -> None:
        with self._lock:  # never under another thread's call: an order in flight would lose its reply
            try:
                self.mt5.shutdown()
            except Exception:  # noqa: BLE001 - closing a dead bridge is fine
                pass
            self._connected = False
            if self._link:
                self._link.close()

    def is_connected(self) -> bool:
        return self._connected

    def now(self) -> float:
        return float(self.clock.now())

    # -- market data --------------------------------------------------------------------------------
    def _select(self, symbol: str) -> None:
        if symbol in self._selected:
            return
        ok = self._call("symbol_select", symbol, True)
        if not ok:
            raise UnknownSymbolError(f"MT5 does not know the symbol {symbol!r}", self._last[0])
        self._selected.add(symbol)

    def symbol_info(self, symbol: str) -> SymbolInfo:
        return self._spec(symbol)[0]

    def _spec(self, symbol: str) -> tuple[SymbolInfo, float]:
        """The symbol's rules and its price grid (trade_tick_size, which can be coarser than `point`)."""
        self._select(symbol)
        info = self._call("symbol_info", symbol)
        if info is None:
            raise UnknownSymbolError(f"MT5 does not know the symbol {symbol!r}", self._last[0])
        raw = cv.to_dict(info)
        return cv.symbol_from(raw), float(raw.get("trade_tick_size") or raw["point"])

    def tick(self, symbol: str) -> Tick:
        self._select(symbol)
        t = self._call("symbol_info_tick", symbol)
        if t is None:  # dropped from Market Watch behind our back: select again once
            self._selected.discard(symbol)
            self._select(symbol)
            t = self._call("symbol_info_tick", symbol)
        if t is None:
            raise BrokerError(f"no quote for {symbol}: {self._last[1]}", self._last[0])
        raw = cv.to_dict(t)
        self.server.learn(float(raw["time"]), self.now())
        return cv.tick_from(raw, self.server.seconds)

    @property
    def offset(self) -> float:
        """Server time - UTC in seconds (MT5 stamps ticks, bars and deals in server time)."""
        return self.server.seconds

    def _ensure_offset(self, symbol: str | None) -> None:
        if not self.server.known and symbol:
            try:
                self.tick(symbol)
            except BrokerError:  # no quote yet: the call that needs the offset reports the broker's state
                return

    def candles(self, symbol: str, timeframe: Timeframe, count: int) -> np.ndarray:
        self._select(symbol)
        self._ensure_offset(symbol)
        rates = self._call("copy_rates_from_pos", symbol, cv.TIMEFRAMES[Timeframe.parse(timeframe)], 1, count)
        if rates is None:
            raise BrokerError(f"no {Timeframe.parse(timeframe).value} bars for {symbol}: {self._last[1]}",
                              self._last[0])
        arr = cv.to_array(rates, self._link.remote_tuple if self._link else None)
        if self.offset:
            arr["time"] -= int(self.offset)
        return arr

    def ticks_from(self, symbol: str, since: float, count: int = 5000) -> np.ndarray:
        """Trade ticks from `since` (UTC) as `core.data.trades` prints, side from MT5's tick flags: +1 when
        TICK_FLAG_BUY is set, -1 for TICK_FLAG_SELL, 0 when the broker sent neither (most CFD feeds: the
        order-flow source then refuses to guess a direction). For the MT5 tick order-flow source."""
        self._select(symbol)
        self._ensure_offset(symbol)
        raw = self._call("copy_ticks_from", symbol, int(since + self.offset), int(count), COPY_TICKS_TRADE)
        if raw is None:
            raise BrokerError(f"no ticks for {symbol}: {self._last[1]}", self._last[0])
        return cv.trade_ticks(raw, self.offset)

    def account_info(self) -> AccountInfo:
        info = self._call("account_info")
        if info is None:
            raise BrokerError(f"account_info failed: {self._last[1]}", self._last[0])
        self.account = cv.account_from(cv.to_dict(info))
        return self.account

    def positions(self, symbol: str | None = None, magic: int | None = None) -> list[Position]:
        rows = self._call("positions_get", symbol=symbol) if symbol else self._call("positions_get")
        if rows is None:
            if self._last[0] == cv.RES_S_OK:
                return []
            raise BrokerError(f"positions_get failed: {self._last[1]}", self._last[0])
        rows = [cv.to_dict(r) for r in rows]
        self._ensure_offset(next((r["symbol"] for r in rows if r["symbol"]), None))
        out = [cv.position_from(r, self.offset) for r in rows]
        return [p for p in out if magic is None or p.magic == magic]

    def history_deals(self, position_id: int | None = None, since: float | None = None) -> list[Deal]:
        if position_id is not None:
            rows = self._call("history_deals_get", position=position_id)
        else:
            margin = 0 if self.server.known else 14 * 3600  # offset unknown: ask wide, filter below
            lo = max(0, int((since or 0) + self.offset - margin))
            hi = int(self.now() + self.offset + margin + 86_400)
            rows = self._call("history_deals_get", lo, hi)
        if rows is None:
            if self._last[0] == cv.RES_S_OK:
                return []
            raise BrokerError(f"history_deals_get failed: {self._last[1]}", self._last[0])
        rows = [cv.to_dict(r) for r in rows]
        # a deposit (no symbol, nothing to quote) usually opens the history: learn from a trade deal
        self._ensure_offset(next((r["symbol"] for r in rows if r["symbol"]), None))
        deals = [d for d in (cv.deal_from(r, self.offset) for r in rows) if d is not None]
        if since is not None:
            deals = [d for d in deals if d.time >= since]
        return sorted(deals, key=lambda d: (d.time, d.ticket))
