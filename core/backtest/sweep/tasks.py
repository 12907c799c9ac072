"""One sweep task = one ordinary backtest (`BacktestEngine`) on a slice of the bars with some params.

This function is what runs on a Dask worker. It gets the bars and the config as scattered data (sent
to each worker once), slices them (a view, no copy) and runs the very engine `moneybot backtest` runs;
nothing here re-implements a decision. It returns plain data (a dict) so results cross process and
machine boundaries and can be appended to the resume log as one JSON line.
"""
from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import numpy as np

from core.backtest.engine import BacktestEngine, BacktestSpec
from core.backtest.sweep.grid import apply_params
from core.config.model import AppConfig
from core.store.metrics import has_r, net_pnl


def task_key(phase: str, fold: int, lo: int, hi: int, params: dict[str, Any], run_id: str) -> str:
    """Stable across runs of the same sweep (same data, config, grid settings): the resume log's key."""
    text = json.dumps([phase, fold, lo, hi, params, run_id], sort_keys=True, default=str)
    return f"{phase}-{fold}-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def run_id_of(candles: np.ndarray, cfg: AppConfig, symbol: str, strategy: str, min_trades: int) -> str:
    """What a finished task's result depends on besides its own fields: the data and the base config."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(candles).tobytes())
    h.update(f"{cfg.version}|{symbol}|{strategy}|{min_trades}".encode())
    return h.hexdigest()[:16]


def run_task(candles: np.ndarray, cfg: AppConfig, symbol: str, strategy: str, task: dict[str, Any]) -> dict[str, Any]:
    """Backtest bars [lo, hi) with `task['params']`; `candles[:hi]` so no later bar can be read."""
    t0 = time.perf_counter()
    lo, hi = int(task["lo"]), int(task["hi"])
    c = candles[:hi]
    pcfg = apply_params(cfg, symbol, task["params"])
    spec = BacktestSpec(symbol=symbol, candles=c, start=float(c["time"][lo]), strategy=strategy)
    rep = BacktestEngine(pcfg, spec).run()
    trades = rep.trades
    rs = [float(t.r_multiple) for t in trades if has_r(t)]
    m = rep.metrics.overall
    return {
        **task,
        "trades": m.trades,
        "expectancy_r": m.expectancy_r,
        "net_pnl": float(m.net_pnl),
        "profit_factor": m.profit_factor,
        "win_rate": m.win_rate,
        "max_drawdown": float(m.max_drawdown),
        "bars": rep.bars,
        "first_bar": spec_first(rep, c),
        "last_bar": hi - 1,
        "seconds": time.perf_counter() - t0,
        "engine_seconds": rep.seconds,
        "r": rs,
        "pnl": [float(net_pnl(t)) for t in trades],
        "exit_times": [float(t.exit_time) for t in trades],
        "entry_times": [float(t.entry_time) for t in trades],
        "tickets": [int(t.ticket) for t in trades],
    }


def spec_first(rep, candles: np.ndarray) -> int:
    """Index of the first decision bar (the report's start time) in `candles`."""
    return int(np.searchsorted(candles["time"], rep.start, side="left"))
