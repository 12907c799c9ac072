"""Live order flow from a crypto exchange through ccxt (Binance public trades and book top; no keys).

Why a background snapshot: an analysis call must never wait on the network. `refresh` (run on a
schedule by `core.data.sources.market_context`) fetches recent trades and the top of the book with
`ccxt.async_support` and `enableRateLimit`, merges the prints into a bounded per-symbol buffer, and
stores one `OrderFlowSnapshot` per symbol; `reading` only reads that snapshot and its age.

Failure is soft and named: a timeout, HTTP 429/418 (rate limit / IP ban: the next refresh backs off),
an exchange maintenance window, a malformed payload, a symbol the exchange does not know, or a
clock skew (prints stamped in our future). Each leaves the last good snapshot in place (it simply
ages out under the data-quality limit) and a one-line `problem` for the card and /health.
"""
from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.config.market import OrderFlowFeeds
from core.data.sources.orderflow import OrderFlowSnapshot, book_imbalance, signals
from core.data.trades import TRADE_DTYPE
from core.domain.clock import Clock

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300.0
CLOCK_CHECK_EVERY = 60  # refreshes between server-time checks (10 minutes at the default 10 s)


class FlowPayloadError(ValueError):
    """The exchange answered, but not with trades/book we can use."""


class ClockSkewError(ValueError):
    """The exchange's prints are stamped too far in our future: our clock (or theirs) is off."""


@dataclass
class FlowState:
    """What one symbol's feed knows now (read without any network call)."""

    snapshot: OrderFlowSnapshot | None = None
    fetched_at: float | None = None  # our clock when the last good refresh finished
    problem: str | None = None  # the last refresh's failure, None when it worked
    kind: str | None = None  # timeout, rate_limit, maintenance, malformed, unknown_symbol, clock_skew, network
    failures: int = 0  # consecutive failed refreshes


def classify(exc: BaseException) -> tuple[str, str]:
    """(kind, one line for a trader) for a failed refresh; ccxt's exception classes name the cause."""
    import ccxt  # local: ccxt is only needed where a live exchange feed is configured

    msg = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, ccxt.RequestTimeout)):
        return "timeout", "the exchange did not answer in time"
    if isinstance(exc, (ccxt.RateLimitExceeded, ccxt.DDoSProtection)):
        return "rate_limit", "the exchange is rate-limiting us (HTTP 429/418); backing off"
    if isinstance(exc, (ccxt.OnMaintenance, ccxt.ExchangeNotAvailable)):
        return "maintenance", "the exchange is unavailable or in maintenance"
    if isinstance(exc, ccxt.BadSymbol):
        return "unknown_symbol", "the exchange does not know this symbol"
    if isinstance(exc, ClockSkewError):
        return "clock_skew", str(exc)
    if isinstance(exc, ccxt.InvalidNonce):
        return "clock_skew", "the exchange says our clock is off"
    if isinstance(exc, (FlowPayloadError, ccxt.BadResponse, ValueError, TypeError, KeyError)):
        return "malformed", f"the exchange sent a payload we cannot read ({msg})"
    if isinstance(exc, ccxt.NetworkError):
        return "network", f"network error ({msg})"
    return "error", f"{type(exc).__name__}: {msg}"


def make_exchange(cfg: OrderFlowFeeds) -> Any:
    """A ccxt async exchange for public data only, with ccxt's own URL override when `api_url` is set."""
    import ccxt.async_support as ccxt_async

    cls = getattr(ccxt_async, cfg.exchange)
    ex = cls({
        "enableRateLimit": True,
        "timeout": int(cfg.timeout_seconds * 1000),
        "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False,
                    "fetchTradesMethod": "publicGetTrades"},
    })
    if cfg.api_url:
        ex.urls["api"]["public"] = cfg.api_url.rstrip("/")
    return ex


def _trade_ids(rows: list[dict]) -> np.ndarray:
    """Exchange trade ids as integers (Binance's are increasing), -1 where an id is not a number."""
    out = np.full(len(rows), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        try:
            out[i] = int(r.get("id"))
        except (TypeError, ValueError):
            pass
    return out


def _trades_array(rows: list[dict]) -> np.ndarray:
    """ccxt unified trades -> TRADE_DTYPE; a row without time/price/amount/side is a malformed payload."""
    out = np.empty(len(rows), dtype=TRADE_DTYPE)
    for i, r in enumerate(rows):
        try:
            t, p, q, side = float(r["timestamp"]) / 1000.0, float(r["price"]), float(r["amount"]), r["side"]
        except (KeyError, TypeError, ValueError) as e:
            raise FlowPayloadError(f"trade without time/price/amount ({e})") from None
        if side not in ("buy", "sell") or not (p > 0 and q >= 0 and math.isfinite(t)):
            raise FlowPayloadError(f"bad trade {r.get('id')!r}: side={side!r} price={p} amount={q}")
        out[i] = (t, p, q, 1 if side == "buy" else -1)
    return out


class ExchangeFlowSource:
    """One snapshot per mapped symbol, refreshed by `refresh`; `reading` never touches the network."""

    def __init__(self, cfg: OrderFlowFeeds, clock: Clock, exchange: Any = None):
        self.cfg = cfg
        self.clock = clock
        self.symbols = dict(cfg.symbols)  # broker symbol -> exchange symbol
        self._exchange = exchange
        self._trades: dict[str, np.ndarray] = {}
        self._last_id: dict[str, int] = {}  # newest trade id merged: prints already held are skipped by id
        self.states: dict[str, FlowState] = {s: FlowState() for s in self.symbols}
        self._refreshes = 0

    @property
    def exchange(self) -> Any:
        if self._exchange is None:
            self._exchange = make_exchange(self.cfg)
        return self._exchange

    def label(self, symbol: str) -> str:
        return f"{self.cfg.exchange.capitalize()} {self.symbols.get(symbol, '?')}"

    def backoff(self, symbol: str) -> float:
        """Seconds until the next refresh: doubled per consecutive rate-limit/maintenance failure."""
        st = self.states.get(symbol)
        base = self.cfg.refresh_seconds
        if st is None or st.kind not in ("rate_limit", "maintenance") or st.failures == 0:
            return base
        return min(base * 2 ** min(st.failures, 10), MAX_BACKOFF_SECONDS)

    async def refresh(self, symbol: str) -> FlowState:
        """Fetch trades + book for one symbol; on any failure keep the last snapshot and record why."""
        st = self.states.setdefault(symbol, FlowState())
        market = self.symbols.get(symbol)
        if market is None:
            st.problem, st.kind = f"{symbol} has no exchange symbol in orderflow_feeds.symbols", "unknown_symbol"
            return st
        try:
            snap = await asyncio.wait_for(self._fetch(symbol, market), self.cfg.timeout_seconds)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - every failure is soft: named, logged, never raised
            kind, text = classify(e)
            st.failures += 1
            if st.kind != kind:
                log.warning("order flow %s (%s): %s", symbol, market, text)
            st.problem, st.kind = text, kind
            return st
        st.snapshot, st.fetched_at, st.problem, st.kind, st.failures = snap, self.clock.now(), None, None, 0
        return st

    async def _check_clock(self, ex: Any) -> None:
        """Compare the exchange's server time with ours, on the first refresh and every CLOCK_CHECK_EVERY-th:
        prints stamped in our future catch a clock that is behind; only the server time catches one ahead."""
        self._refreshes += 1
        if (self._refreshes - 1) % CLOCK_CHECK_EVERY:
            return
        server = await ex.fetch_time()
        if server is None:
            return
        diff = float(server) / 1000.0 - self.clock.now()
        if abs(diff) > self.cfg.max_clock_skew_seconds:
            self._refreshes = 0  # check again next time until the clocks agree
            way = "behind" if diff > 0 else "ahead of"
            raise ClockSkewError(f"our clock is {abs(diff):.0f} s {way} the exchange's (limit "
                                 f"{self.cfg.max_clock_skew_seconds:g} s): check the system clock")

    async def _fetch(self, symbol: str, market: str) -> OrderFlowSnapshot:
        ex = self.exchange
        await self._check_clock(ex)
        rows = await ex.fetch_trades(market, limit=self.cfg.trades_limit)
        book = await ex.fetch_order_book(market, limit=self.cfg.book_levels)
        if not isinstance(rows, list) or not isinstance(book, dict):
            raise FlowPayloadError("trades or book is not a list/object")
        new = _trades_array(rows)
        now = self.clock.now()
        if len(new) and float(new["time"].max()) > now + self.cfg.max_clock_skew_seconds:
            ahead = float(new["time"].max()) - now
            raise ClockSkewError(f"the exchange's prints are {ahead:.0f} s ahead of our clock (limit "
                                 f"{self.cfg.max_clock_skew_seconds:g} s): check the system clock")
        bids, asks = book.get("bids"), book.get("asks")
        if not isinstance(bids, list) or not isinstance(asks, list):
            raise FlowPayloadError("order book without bid/ask lists")
        merged = self._merge(symbol, new, _trade_ids(rows), now)
        if len(merged) == 0:
            raise FlowPayloadError("no trades in the answer")
        snap = signals(merged, float(merged["time"][-1]), self.cfg.window_seconds, source=self.label(symbol),
                       kind="exchange", large_quantile=self.cfg.large_trade_quantile,
                       book=book_imbalance(bids, asks, self.cfg.book_levels))
        if snap is None:  # cannot happen with prints present; kept as a named failure, not an assert
            raise FlowPayloadError("no trades in the window")
        return snap

    def _merge(self, symbol: str, new: np.ndarray, ids: np.ndarray, now: float) -> np.ndarray:
        """Held prints + the ones not seen before (by trade id: two equal prints in one millisecond are two
        trades), trimmed to twice the window and to `max_trades_kept`: memory stays bounded."""
        old = self._trades.get(symbol)
        last = self._last_id.get(symbol)
        if old is not None and len(old):
            if last is not None and (ids >= 0).all():
                fresh = ids > last
            else:  # ids we cannot order: fall back to time
                fresh = new["time"] > old["time"][-1]
            new, ids = new[fresh], ids[fresh]
        if len(ids) and (ids >= 0).all():
            self._last_id[symbol] = int(ids.max()) if last is None else max(last, int(ids.max()))
        both = new if old is None else np.concatenate([old, new])
        if len(both) > 1 and np.any(np.diff(both["time"]) < 0):
            both = both[np.argsort(both["time"], kind="stable")]
        keep_from = now - 2 * self.cfg.window_seconds
        both = both[both["time"] > keep_from][-self.cfg.max_trades_kept:]
        self._trades[symbol] = both.copy()
        return both

    def reading(self, symbol: str) -> FlowState | None:
        return self.states.get(symbol)

    def held_trades(self) -> int:
        return sum(len(a) for a in self._trades.values())

    async def close(self) -> None:
        if self._exchange is not None:
            try:
                await self._exchange.close()
            except Exception as e:  # noqa: BLE001 - closing a half-open session must not stop shutdown
                log.debug("closing the exchange session: %s", e)
