"""`run_sweep`: walk-forward parameter sweep on a Dask cluster, resumable after a crash.

Flow: validate the grid and folds (before any worker starts) → connect to the cluster (a LocalCluster
with one single-threaded worker process per core, or `--scheduler tcp://host:8786`) → scatter the bars
and the config to every worker once → phase 1, one task per (fold, grid point) on the fold's
in-sample block → pick each fold's best params by the objective → phase 2, those params on the fold's
out-of-sample block → summary and output files.

Resume: every finished task is appended to `tasks.jsonl` in the output folder (one JSON line, flushed
and fsynced) under a key derived from its phase, fold, bars, params and the data/config it ran on.
`resume=True` reads that log and submits only tasks whose key is not in it, so a finished task is never
run twice; a half-written last line (the crash) is ignored and that task runs again.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from core.backtest.engine import BacktestEngine, BacktestSpec
from core.backtest.sweep.folds import Fold, walk_forward
from core.backtest.sweep.grid import GridFile, check_grid
from core.backtest.sweep.summary import (
    OBJECTIVES,
    FoldResult,
    SweepSummary,
    best_of,
    check_objective,
    importance,
    oos_ci,
    score,
    too_few,
    verdict,
)
from core.backtest.sweep.tasks import run_id_of, run_task, task_key
from core.config.model import AppConfig
from core.domain.exceptions import UserFacingError

Progress = Callable[[int, int], None]
LOG_NAME = "tasks.jsonl"
WORKER_WAIT_SECONDS = 30.0


class SweepRun:
    """What happened, besides the summary: how many tasks ran now and how many did not (`reused`): of those,
    `twins` are out-of-sample tasks that were the same backtest as an in-sample one, the rest came from the log."""

    def __init__(self, summary: SweepSummary, rows: list[dict[str, Any]], ran: int, reused: int,
                 workers: int, seconds: float, twins: int = 0) -> None:
        self.summary, self.rows, self.ran, self.reused, self.twins = summary, rows, ran, reused, twins
        self.workers, self.seconds = workers, seconds


def read_log(path: Path) -> dict[str, dict[str, Any]]:
    done: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # the line a crash cut short: that task simply runs again
        if isinstance(row, dict) and "key" in row:
            done[row["key"]] = row
    return done


class _Log:
    def __init__(self, path: Path, fresh: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torn = not fresh and path.exists() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
        self._fh = path.open("w" if fresh else "a")
        if torn:  # end the line a crash cut short, so the next result is not glued to it (and lost)
            self._fh.write("\n")

    def add(self, row: dict[str, Any]) -> None:
        self._fh.write(json.dumps(row) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


def open_client(scheduler: str | None, workers: int | None):
    """(client, cluster): an existing cluster by address, else a LocalCluster of one process per core."""
    from dask.distributed import Client, LocalCluster

    # the scheduler side runs in this process: its INFO lines (workers joining, leaving) are not the trader's
    for name in ("distributed", "bokeh", "tornado"):
        if logging.getLogger(name).getEffectiveLevel() < logging.WARNING:
            logging.getLogger(name).setLevel(logging.WARNING)
    if scheduler:
        try:
            client = Client(scheduler, timeout="15s")
        except (OSError, TimeoutError) as e:
            raise UserFacingError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
        try:  # tasks sent to a scheduler without workers would wait forever
            client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
        except (OSError, TimeoutError):
            client.close()
            raise UserFacingError(f"the Dask scheduler at {scheduler} has no workers after {WORKER_WAIT_SECONDS:g} s: start "
                                  f"some with `dask worker {scheduler}` from a checkout of this repo") from None
        return client, None
    n = workers or os.cpu_count() or 1
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR)
    return Client(cluster), cluster


def _warmup_first(cfg: AppConfig, symbol: str, candles: np.ndarray) -> int:
    return BacktestEngine(cfg, BacktestSpec(symbol=symbol, candles=candles)).first


def plan_tasks(folds: list[Fold], combos: list[dict[str, Any]], run_id: str) -> list[dict[str, Any]]:
    tasks = []
    for f in folds:
        for ci, params in enumerate(combos):
            tasks.append({"key": task_key("is", f.index, f.is_lo, f.is_hi, params, run_id), "phase": "is",
                          "fold": f.index, "combo": ci, "params": params, "lo": f.is_lo, "hi": f.is_hi})
    return tasks


def oos_task(f: Fold, best: dict[str, Any], run_id: str) -> dict[str, Any]:
    return {"key": task_key("oos", f.index, f.oos_lo, f.oos_hi, best["params"], run_id), "phase": "oos",
            "fold": f.index, "combo": best["combo"], "params": best["params"], "lo": f.oos_lo, "hi": f.oos_hi}


def run_sweep(cfg: AppConfig, symbol: str, candles: np.ndarray, grid: GridFile, *, folds: int = 4,
              objective: str = "expectancy_r", scheduler: str | None = None, workers: int | None = None,
              out_dir: str | Path, resume: bool = False, progress: Progress | None = None) -> SweepRun:
    check_objective(objective)
    combos = check_grid(cfg, symbol, grid)
    first = _warmup_first(cfg, symbol, candles)
    fold_list = walk_forward(len(candles), first, folds)
    run_id = run_id_of(candles, cfg, symbol, grid.strategy, grid.min_trades)
    out = Path(out_dir)
    log_path = out / LOG_NAME
    done = read_log(log_path) if resume else {}
    is_tasks = plan_tasks(fold_list, combos, run_id)
    total = len(is_tasks) + len(fold_list)
    t0 = time.perf_counter()
    log = _Log(log_path, fresh=not resume)
    client = cluster = None
    ran = reused = twins = 0
    finished = 0

    def tick() -> None:
        if progress:
            progress(finished, total)

    shared: dict[str, Any] = {}
    try:
        results: dict[str, dict[str, Any]] = {}

        def run_phase(tasks: list[dict[str, Any]]) -> None:
            nonlocal client, cluster, ran, reused, finished
            todo = []
            for t in tasks:
                if t["key"] in done:
                    results[t["key"]] = done[t["key"]]
                    reused += 1
                    finished += 1
                else:
                    todo.append(t)
            tick()
            if not todo:
                return
            if client is None:
                client, cluster = open_client(scheduler, workers)
                # the bars and the config go to every worker once; each task gets only their futures
                shared["data"] = client.scatter(candles, broadcast=True, hash=False)
                shared["cfg"] = client.scatter(cfg, broadcast=True, hash=False)
            data, conf = shared["data"], shared["cfg"]
            from dask.distributed import as_completed

            futs = [client.submit(run_task, data, conf, symbol, grid.strategy, t, key=f"sweep-{t['key']}", pure=False)
                    for t in todo]
            for fut in as_completed(futs):
                try:
                    row = fut.result()
                except Exception as e:  # noqa: BLE001 - one clear line; finished tasks stay in the log
                    raise UserFacingError(f"sweep task {fut.key} failed: {type(e).__name__}: {e} "
                                          "(finished tasks are kept: rerun with --resume)") from None
                results[row["key"]] = row
                log.add(row)
                ran += 1
                finished += 1
                tick()

        run_phase(is_tasks)
        best: dict[int, dict[str, Any] | None] = {}
        for f in fold_list:
            rows = [results[t["key"]] for t in is_tasks if t["fold"] == f.index]
            best[f.index] = best_of(rows, objective, grid.min_trades)
        oos = [oos_task(f, best[f.index], run_id) for f in fold_list if best[f.index] is not None]
        total = len(is_tasks) + len(oos)
        # fold k's out-of-sample block is fold k+1's in-sample block, where every grid point already ran:
        # the same bars and params are the same backtest, so its result is taken, not run again
        same = {(r["lo"], r["hi"], json.dumps(r["params"], sort_keys=True)): r
                for r in (results[t["key"]] for t in is_tasks)}
        for t in oos:
            twin = same.get((t["lo"], t["hi"], json.dumps(t["params"], sort_keys=True)))
            if twin is not None and t["key"] not in results:
                results[t["key"]] = {**twin, **t}
                reused += 1
                twins += 1
                finished += 1
        run_phase([t for t in oos if t["key"] not in results])
        n_workers = len(client.scheduler_info()["workers"]) if client is not None else 0
    finally:
        log.close()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    rows = [results[t["key"]] for t in is_tasks] + [results[t["key"]] for t in oos]
    summary = summarise(symbol, candles, fold_list, is_tasks, oos, results, best, objective, grid,
                        len(rows))
    return SweepRun(summary, rows, ran, reused, n_workers, time.perf_counter() - t0, twins)


def summarise(symbol: str, candles: np.ndarray, fold_list: list[Fold], is_tasks, oos, results, best,
              objective: str, grid: GridFile, n_tasks: int) -> SweepSummary:
    times = candles["time"]
    step = float(np.median(np.diff(times[: min(len(times), 1000)]))) if len(times) > 1 else 0.0
    by_fold_oos = {t["fold"]: results[t["key"]] for t in oos}
    folds_out = []
    for f in fold_list:
        b = best[f.index]
        o = by_fold_oos.get(f.index)
        fr = FoldResult(fold=f.index, is_start=float(times[f.is_lo]), is_end=float(times[f.is_hi - 1]) + step,
                        oos_start=float(times[f.oos_lo]), oos_end=float(times[f.oos_hi - 1]) + step,
                        params=b["params"] if b else None)
        if b is None:
            fr.note = f"no parameter set reached {grid.min_trades} in-sample trades"
        else:
            fr.is_trades, fr.is_objective, fr.is_expectancy_r = b["trades"], score(b, objective, 1), b["expectancy_r"]
        if o is not None:
            fr.oos_trades, fr.oos_expectancy_r, fr.oos_net_pnl = o["trades"], o["expectancy_r"], o["net_pnl"]
            fr.oos_objective = score(o, objective, 1)
            fr.note = too_few(o["trades"], grid.min_trades)
        folds_out.append(fr)
    ci = oos_ci([by_fold_oos[k] for k in sorted(by_fold_oos)])
    is_exp = [fr.is_expectancy_r for fr in folds_out if fr.is_expectancy_r is not None]
    keys = list(grid.params)
    return SweepSummary(
        symbol=symbol, objective=objective, objective_text=f"{OBJECTIVES[objective]}, at least {grid.min_trades} "
        "in-sample trades", min_trades=grid.min_trades, folds=folds_out, tasks=n_tasks,
        oos_trades=sum(fr.oos_trades for fr in folds_out), oos_expectancy_r_ci=ci,
        is_mean_expectancy_r=(sum(is_exp) / len(is_exp)) if is_exp else None, verdict=verdict(ci, grid.min_trades),
        important_params=importance([results[t["key"]] for t in is_tasks], keys, objective, grid.min_trades),
    )
