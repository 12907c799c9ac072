"""Order flow without an exchange: MT5 tick flags (XAU, EUR on brokers that send them) and recorded prints.

- `TickFlowSource`: tick-direction delta from `copy_ticks_from` through the broker port (`ticks_from`).
  Only ticks the broker flagged BUY or SELL count; a broker that sends no such flags (most CFD feeds)
  gets no order flow at all rather than a direction guessed from bid/ask moves, and says so.
- `RecordedFlowSource`: the paper broker's replay of the recorded trade files (Binance BTCUSDT and
  freqtrade's ETH/USDT prints in the shared market data). When no file covers the replay time it names
  the gap (the file's span), because a silent "no flow" would look like a quiet market.
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.config.market import OrderFlowFeeds
from core.config.paths import resolve_path
from core.data.sources.exchange_flow import FlowState
from core.data.sources.orderflow import signals
from core.data.trades import load_trades
from core.domain.clock import Clock

log = logging.getLogger(__name__)


def _fmt(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class RecordedFlowSource:
    """Snapshots at the replay clock's `now` from recorded trade files, loaded once per symbol."""

    def __init__(self, cfg: OrderFlowFeeds):
        self.cfg = cfg
        self.files = {s: resolve_path(p) for s, p in cfg.recorded.items()}
        self._trades: dict[str, np.ndarray | str] = {}  # the prints, or why they could not be read

    def label(self, symbol: str) -> str:
        f = self.files.get(symbol)
        return f"recorded trades {Path(f).name}" if f else "recorded trades"

    def _load(self, symbol: str) -> np.ndarray | str:
        hit = self._trades.get(symbol)
        if hit is None:
            try:
                hit = load_trades(self.files[symbol])
            except Exception as e:  # noqa: BLE001 - a bad file is a named gap, never a crash
                hit = f"the recorded trades for {symbol} could not be read: {getattr(e, 'message', e)}"
                log.warning("%s", hit)
            self._trades[symbol] = hit
        return hit

    def reading(self, symbol: str, now: float) -> FlowState | None:
        if symbol not in self.files:
            return None
        trades = self._load(symbol)
        if isinstance(trades, str):
            return FlowState(problem=trades, kind="malformed")
        snap = signals(trades, now, self.cfg.window_seconds, source=self.label(symbol), kind="recorded",
                       large_quantile=self.cfg.large_trade_quantile)
        if snap is None:
            span = f"{_fmt(trades['time'][0])} to {_fmt(trades['time'][-1])}" if len(trades) else "nothing"
            return FlowState(problem=f"no recorded order flow covers {_fmt(now)} (the recorded trades span {span})",
                             kind="no_coverage")
        return FlowState(snapshot=snap, fetched_at=now)


class TickFlowSource:
    """Tick-direction flow from the broker's flagged trade ticks; refreshed off the event loop."""

    def __init__(self, cfg: OrderFlowFeeds, broker: Any, clock: Clock):
        self.cfg = cfg
        self.broker = broker
        self.clock = clock
        self.symbols = list(cfg.mt5_tick_symbols)
        self.states: dict[str, FlowState] = {s: FlowState() for s in self.symbols}

    def label(self, symbol: str) -> str:
        return f"MT5 tick flags {symbol}"

    def refresh(self, symbol: str) -> FlowState:
        """Blocking (a broker call): run it in a worker thread. Never raises."""
        st = self.states.setdefault(symbol, FlowState())
        now = self.clock.now()
        fetch = getattr(self.broker, "ticks_from", None)
        if fetch is None:
            st.problem, st.kind = "this broker offers no tick history (copy_ticks_from)", "unsupported"
            return st
        try:
            ticks = fetch(symbol, now - self.cfg.window_seconds, self.cfg.max_trades_kept)
        except Exception as e:  # noqa: BLE001 - the broker's failure is this source's named gap
            st.failures += 1
            st.problem, st.kind = f"tick history unavailable: {getattr(e, 'message', e)}", "network"
            return st
        flagged = ticks[ticks["side"] != 0] if len(ticks) else ticks
        if len(ticks) and len(flagged) == 0:
            st.problem, st.kind = f"the broker sends no buy/sell flags on {symbol} ticks", "no_flags"
            st.snapshot = None
            return st
        snap = signals(flagged, now, self.cfg.window_seconds, source=self.label(symbol), kind="mt5_ticks",
                       large_quantile=self.cfg.large_trade_quantile)
        if snap is None:
            st.problem, st.kind = f"no flagged {symbol} ticks in the last {self.cfg.window_seconds:g} s", "no_ticks"
            return st
        st.snapshot, st.fetched_at, st.problem, st.kind, st.failures = snap, now, None, None, 0
        return st

    def reading(self, symbol: str) -> FlowState | None:
        return self.states.get(symbol)
