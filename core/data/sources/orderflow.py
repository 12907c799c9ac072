"""Order-flow signals from trade prints: an *optional* confirmation for a fade at a range edge.

A fade of the range top is better when aggressive buying is drying up (sellers hitting bids), and
worse when takers are still lifting offers. Over a trailing window this module computes the seed's
signals from signed prints (see `core.data.trades`):

- taker imbalance in [-1, 1]: (buy − sell) / (buy + sell) taker volume, over the whole window and
  over its most recent third (`recent_imbalance`: has the buying dried up *lately*?);
- cumulative delta: buy − sell taker volume, in base units;
- large-trade imbalance: the same ratio over prints at or above the window's size quantile (the
  players who move a range edge);
- book imbalance at the top N levels: (bid − ask) / (bid + ask) resting size, when a book is known.

Every source (exchange via ccxt, MT5 tick flags, recorded files) produces the same snapshot, so the
filters never care where it came from; `kind` and `source` say it on the card.
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
    kind: str = ""  # "exchange", "mt5_ticks", "recorded": which kind of feed produced it
    recent_imbalance: float | None = None  # taker imbalance over the last third of the window
    large_imbalance: float | None = None  # imbalance of prints at/above the size quantile
    book_imbalance: float | None = None  # (bid − ask) / (bid + ask) over the top N levels
    window_seconds: float = 0.0

    @property
    def cumulative_delta(self) -> float:
        return self.buy_volume - self.sell_volume

    def against(self, upper: bool) -> float:
        """How strongly the flow argues *for* a fade, in [-1, 1]: at the top, selling/dried-up buying.

        Weights: recent taker imbalance 0.5 (the drying-up the seed asks for), large prints 0.25,
        book 0.25; missing parts give their weight to the taker imbalance."""
        parts = [(0.25, self.large_imbalance), (0.25, self.book_imbalance)]
        taker = self.recent_imbalance if self.recent_imbalance is not None else self.imbalance
        w_taker = 0.5 + sum(w for w, v in parts if v is None)
        flow = w_taker * taker + sum(w * v for w, v in parts if v is not None)
        return float(-flow if upper else flow)

    def buying_dried_up(self) -> bool:
        """The seed's fade-of-the-top confirmation: takers have stopped lifting offers lately."""
        recent = self.recent_imbalance if self.recent_imbalance is not None else self.imbalance
        return recent <= 0.0

    def fade_confirmed(self, upper: bool) -> bool:
        """At the top: aggressive buying dried up; at the bottom: aggressive selling dried up."""
        recent = self.recent_imbalance if self.recent_imbalance is not None else self.imbalance
        return recent <= 0.0 if upper else recent >= 0.0


def _ratio(buy: float, sell: float) -> float:
    total = buy + sell
    return (buy - sell) / total if total > 0 else 0.0


def book_imbalance(bids, asks, levels: int) -> float | None:
    """(bid − ask) / (bid + ask) resting size over the top `levels` of each side; None without a book."""
    b = sum(float(q) for _, q in list(bids)[:levels])
    a = sum(float(q) for _, q in list(asks)[:levels])
    return None if b + a <= 0 else (b - a) / (b + a)


def signals(trades: np.ndarray, now: float, window_seconds: float = 300.0, *, source: str = "", kind: str = "",
            large_quantile: float = 0.9, book: float | None = None) -> OrderFlowSnapshot | None:
    """Every signal over (now - window, now]; None when no print falls in it.

    Only trades at or before `now` are used, so a replay cannot peek at later prints."""
    t = trades["time"]
    hi = int(np.searchsorted(t, now, side="right"))
    lo = int(np.searchsorted(t, now - window_seconds, side="right"))
    if hi <= lo:
        return None
    q = trades["qty"][lo:hi]
    buys = trades["side"][lo:hi] > 0
    buy = float(q[buys].sum())
    sell = float(q[~buys].sum())
    rlo = int(np.searchsorted(t, now - window_seconds / 3.0, side="right"))
    recent = None
    if hi > rlo:
        rq, rb = trades["qty"][rlo:hi], trades["side"][rlo:hi] > 0
        recent = _ratio(float(rq[rb].sum()), float(rq[~rb].sum()))
    cut = float(np.quantile(q, large_quantile)) if len(q) else 0.0
    big = q >= cut
    large = _ratio(float(q[big & buys].sum()), float(q[big & ~buys].sum())) if big.any() else None
    return OrderFlowSnapshot(_ratio(buy, sell), buy, sell, hi - lo, float(t[hi - 1]), source, kind, recent, large,
                             book, float(window_seconds))


def imbalance(trades: np.ndarray, now: float, window_seconds: float = 300.0, source: str = "") -> OrderFlowSnapshot | None:
    """Taker imbalance over (now - window, now] (with the other signals); None when no print falls in it."""
    return signals(trades, now, window_seconds, source=source)


def load_snapshot(path: str | Path, now: float, window_seconds: float = 300.0) -> OrderFlowSnapshot | None:
    """Read a trades file (see `core.data.trades.load_trades`) and summarise the window ending at `now`."""
    return signals(load_trades(path), now, window_seconds, source=str(path), kind="recorded")
