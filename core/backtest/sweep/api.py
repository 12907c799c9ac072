"""`sweep`: the one call `moneybot sweep` makes (load bars, validate, run on Dask, write the outputs)."""
from __future__ import annotations

from pathlib import Path

from core.backtest.api import load_series
from core.backtest.sweep.grid import load_grid
from core.backtest.sweep.outputs import write_outputs
from core.backtest.sweep.runner import Progress, SweepRun, run_sweep
from core.config.model import AppConfig
from core.data.catalog import MarketData


def sweep(cfg: AppConfig, symbol: str, grid_path: str | Path, *, data: str | Path | None = None, folds: int = 4,
          objective: str = "expectancy_r", scheduler: str | None = None, workers: int | None = None,
          out_dir: str | Path, resume: bool = False, progress: Progress | None = None) -> SweepRun:
    grid = load_grid(grid_path)  # a bad grid file fails before the data is read
    name = MarketData(cfg).symbol_name(symbol)
    candles = load_series(cfg, name, data)
    run = run_sweep(cfg, name, candles, grid, folds=folds, objective=objective, scheduler=scheduler,
                    workers=workers, out_dir=out_dir, resume=resume, progress=progress)
    write_outputs(out_dir, run.rows, run.summary, list(grid.params))
    return run
