"""What a backtest decided, bar by bar, in a form another backtester can replay.

A `Signal` is one trade as the engine *ordered* it (decision bar, side, SL/TP, stop moves, early-close
requests) plus what the broker did with it (fill and exit). Emitting decisions separately from fills
is what lets `core.backtest.peer` hand the very same orders to backtesting.py and compare fills,
without backtesting.py ever seeing our analysis.

Bar indices refer to the primary candle array the backtest ran on (M5 by default); a bar's `time` is
its *open* time, as in MT5, and a decision at bar i is taken once bar i has closed.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class StopMove(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bar: int
    time: float
    new_sl: float
    reason: str = ""


class Signal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int
    symbol: str
    strategy: str
    side: Literal["buy", "sell"]
    decision_bar: int
    decision_time: float = Field(description="close time of the decision bar (as_of of the analysis)")
    requested_entry: float = Field(description="the strategy's planned entry")
    sl: float
    tp: float
    volume: float
    score: float = 0.0
    # What the broker did
    ticket: int | None = None
    entry_bar: int | None = None
    entry_time: float | None = None
    entry_price: float | None = None
    exit_bar: int | None = None
    exit_time: float | None = None
    exit_price: float | None = None
    exit_reason: str = ""
    stop_moves: list[StopMove] = Field(default_factory=list)
    close_request_bar: int | None = Field(default=None, description="bar at which the exit manager asked to close")


SIGNAL_CSV_FIELDS = [
    "id", "symbol", "strategy", "side", "decision_bar", "decision_time", "requested_entry", "sl", "tp",
    "volume", "score", "ticket", "entry_bar", "entry_time", "entry_price", "exit_bar", "exit_time",
    "exit_price", "exit_reason", "close_request_bar", "stop_moves",
]


def write_signals(signals: list[Signal], directory: Path) -> tuple[Path, Path]:
    """signals.json (exact) and signals.csv (stop moves as a compact `bar:sl;...` column)."""
    directory.mkdir(parents=True, exist_ok=True)
    jpath = directory / "signals.json"
    jpath.write_text(json.dumps([s.model_dump(mode="json") for s in signals], indent=1))
    cpath = directory / "signals.csv"
    with cpath.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=SIGNAL_CSV_FIELDS)
        w.writeheader()
        for s in signals:
            row = s.model_dump(mode="json")
            row["stop_moves"] = ";".join(f"{m['bar']}:{m['new_sl']!r}" for m in row["stop_moves"])
            w.writerow(row)
    return jpath, cpath


def read_signals(path: Path) -> list[Signal]:
    return [Signal.model_validate(d) for d in json.loads(Path(path).read_text())]
