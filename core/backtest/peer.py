"""Replay our backtest's orders through backtesting.py, the peer we cross-check fills against.

backtesting.py never sees our analysis: it gets the same bars and, at each decision bar, the same
orders our engine placed (side, SL, TP), the same stop moves and the same early-close requests. Any
difference in entry/exit bars or prices must then come from a fill rule, and the rules are:

1. Entry. backtesting.py fills a market order placed at bar i at bar i+1's open (default,
   `trade_on_close=False`); PaperBroker fills a market order at the *forming* bar's open, which after
   bar i closed is bar i+1's open: same bar, same price. Across a data gap (weekend) PaperBroker
   refuses the order (market closed) while backtesting.py would fill at the next bar after the gap;
   such refused signals carry no entry and are skipped by the comparison.
2. SL before TP. When one bar touches both, backtesting.py processes the stop first (the SL order is
   queued ahead of the TP); PaperBroker documents the same pessimistic tie rule.
3. Gaps. A stop gapped through fills at the bar's open in both (never at the stop price).
4. Early closes: the live monitor decides after bar j closed and closes at the current quote, which
   PaperBroker takes from the forming bar j+1's open; backtesting.py fills `trade.close()` placed at
   bar j at bar j+1's open too. Stop moves (breakeven) placed at bar j apply from bar j+1 in both.
5. Prices. backtesting.py has one price series and a *relative* spread; PaperBroker quotes bid from
   the bars and ask = bid + spread points, plus slippage. The exact cross-check therefore runs with
   costs at zero; with costs on, a short's stop/target fire on the ask (bar + spread), a long's on the
   bid, so trades can legitimately differ by the spread.
"""
from __future__ import annotations

import time as _time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.backtest.signals import Signal


def candles_frame(candles: np.ndarray) -> pd.DataFrame:
    """OHLCV frame as backtesting.py wants it (DatetimeIndex, capitalised columns)."""
    idx = pd.to_datetime(candles["time"].astype(np.int64), unit="s", utc=True).tz_localize(None)
    return pd.DataFrame(
        {
            "Open": candles["open"].astype(float),
            "High": candles["high"].astype(float),
            "Low": candles["low"].astype(float),
            "Close": candles["close"].astype(float),
            "Volume": candles["tick_volume"].astype(float),
        },
        index=idx,
    )


@dataclass
class PeerRun:
    trades: pd.DataFrame  # stats._trades with a `Tag` column = our signal id
    seconds: float
    bars: int

    @property
    def bars_per_second(self) -> float:
        return self.bars / self.seconds if self.seconds > 0 else float("inf")


def _replay_strategy(signals: list[Signal]):
    from backtesting import Strategy

    entries: dict[int, list[Signal]] = {}
    moves: dict[int, list[tuple[int, float]]] = {}
    closes: dict[int, list[int]] = {}
    for s in signals:
        entries.setdefault(s.decision_bar, []).append(s)
        for m in s.stop_moves:
            moves.setdefault(m.bar, []).append((s.id, m.new_sl))
        if s.close_request_bar is not None:
            closes.setdefault(s.close_request_bar, []).append(s.id)

    class Replay(Strategy):
        def init(self):
            pass

        def next(self):
            i = len(self.data) - 1
            if i in moves or i in closes:
                open_by_tag = {t.tag: t for t in self.trades}
                for sid, new_sl in moves.get(i, ()):
                    tr = open_by_tag.get(sid)
                    if tr is not None:
                        tr.sl = new_sl
                for sid in closes.get(i, ()):
                    tr = open_by_tag.get(sid)
                    if tr is not None:
                        tr.close()
            for s in entries.get(i, ()):
                order = self.buy if s.side == "buy" else self.sell
                order(size=1, sl=s.sl, tp=s.tp, tag=s.id)

    return Replay


def run_peer(candles: np.ndarray, signals: list[Signal], *, trade_on_close: bool = False,
             frame: pd.DataFrame | None = None) -> PeerRun:
    """Run the signals through backtesting.py; zero costs (see rule 5), one unit per trade."""
    from backtesting import Backtest

    df = frame if frame is not None else candles_frame(candles)
    cash = float(df["High"].max()) * 1000.0  # one unit always affordable, no margin cancellations
    bt = Backtest(df, _replay_strategy(signals), cash=cash, commission=0.0, spread=0.0,
                  trade_on_close=trade_on_close, exclusive_orders=False, hedging=True, finalize_trades=True)
    t0 = _time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = bt.run()
    secs = _time.perf_counter() - t0
    return PeerRun(trades=stats._trades.copy(), seconds=secs, bars=len(df))


@dataclass
class Mismatch:
    signal_id: int
    field: str
    ours: float | int | None
    peer: float | int | None


def compare(signals: list[Signal], peer: PeerRun, candles: np.ndarray, *, price_tol: float = 1e-9) -> list[Mismatch]:
    """Every disagreement between our fills and the peer's (bars and prices). With costs at zero the list
    must be empty; with costs on, differences are the spread/slippage of rule 5."""
    out: list[Mismatch] = []
    by_tag = {int(r.Tag): r for r in peer.trades.itertuples()}
    for s in signals:
        if s.entry_bar is None:
            continue
        r = by_tag.get(s.id)
        if r is None:
            out.append(Mismatch(s.id, "missing", s.entry_bar, None))
            continue
        if int(r.EntryBar) != s.entry_bar:
            out.append(Mismatch(s.id, "entry_bar", s.entry_bar, int(r.EntryBar)))
        if abs(float(r.EntryPrice) - s.entry_price) > price_tol:
            out.append(Mismatch(s.id, "entry_price", s.entry_price, float(r.EntryPrice)))
        if s.exit_bar is None:
            continue
        if int(r.ExitBar) != s.exit_bar:
            out.append(Mismatch(s.id, "exit_bar", s.exit_bar, int(r.ExitBar)))
        if abs(float(r.ExitPrice) - s.exit_price) > price_tol:
            out.append(Mismatch(s.id, "exit_price", s.exit_price, float(r.ExitPrice)))
    return out


def cost_free_exit_bar(signal: Signal, candles: np.ndarray) -> int | None:
    """Where this trade would have exited with spread and slippage at zero, by PaperBroker's own stop rule
    (`paper_fills.check_stops`), applying the same stop moves and close request as our run.

    Used to attribute an exit-bar disagreement with costs on to rule 5: if the cost-free exit bar is the
    peer's, the spread (a short exits on the ask) moved the exit, not a logic difference.
    """
    from core.brokers.paper.fills import BarPrices, check_stops

    if signal.entry_bar is None:
        return None
    sl = signal.sl
    moves = {m.bar: m.new_sl for m in signal.stop_moves}
    for k in range(signal.entry_bar, len(candles)):
        b = candles[k]
        hit = check_stops(signal.side, sl, signal.tp, BarPrices(float(b["open"]), float(b["high"]), float(b["low"]), 0.0), 0.0)
        if hit is not None:
            return k
        if signal.close_request_bar is not None and k == signal.close_request_bar:
            return k + 1
        if k in moves:
            sl = moves[k]
    return None
