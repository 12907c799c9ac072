"""Order-flow imbalance from trade prints: an *optional* confirmation for a fade at a range edge.

A fade of the range top is better when aggressive buying is drying up (sellers hitting bids), and
worse when takers are still lifting offers. The imbalance in [-1, 1] is (buy − sell) / (buy + sell)
taker volume over a trailing window. MT5 CFD feeds have no trade prints, so the source is optional:
when it is missing or stale the confluence rule falls back to `skip_confirmation` and uses candle
evidence only.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data.trades import load_trades


@dataclass(frozen=True)
class OrderFlowSnapshot:
    imbalance: float  # -1 (all selling) .. +1 (all buying)
    buy_volume: float
    sell_volume: float
    n_trades: int
    timestamp: float  # time of the last trade used, epoch seconds UTC
    source: str = ""


def imbalance(trades: np.ndarray, now: float, window_seconds: float = 300.0, source: str = "") -> OrderFlowSnapshot | None:
    """Taker imbalance over (now - window, now] from `core.data.trades` prints; None when none fall in it.

    Only trades at or before `now` are used, so a replay cannot peek at later prints.
    """
    t = trades["time"]
    hi = int(np.searchsorted(t, now, side="right"))
    lo = int(np.searchsorted(t, now - window_seconds, side="right"))
    if hi <= lo:
        return None
    q = trades["qty"][lo:hi]
    buy_mask = trades["side"][lo:hi] > 0
    buy = float(q[buy_mask].sum())
    sell = float(q[~buy_mask].sum())
    total = buy + sell
    imb = (buy - sell) / total if total > 0 else 0.0
    return OrderFlowSnapshot(imb, buy, sell, hi - lo, float(t[hi - 1]), source)


def load_snapshot(path: str | Path, now: float, window_seconds: float = 300.0) -> OrderFlowSnapshot | None:
    """Read a trades file (see `core.data.trades.load_trades`) and summarise the window ending at `now`."""
    return imbalance(load_trades(path), now, window_seconds, source=str(path))
