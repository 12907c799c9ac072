"""Sweep throughput on Dask: tasks/s with 1 and 2 local worker processes, and one task's overhead.

    .venv/bin/python bench/sweep.py            # 4 folds x 6 grid points = 24 in-sample tasks on real XAUUSD M5
    .venv/bin/python bench/sweep.py --quick    # 2 folds x 4 grid points on EURUSD M5

Each task is one backtest (`core.backtest.sweep.tasks.run_task`, the function the sweep submits). The
bars and the config are scattered to the workers once, before the clock starts, as `run_sweep` does;
cluster start-up is not counted (it is paid once per sweep, not per task). The same tasks are also run
in this process with direct calls, to give the per-task overhead of going through the cluster.
Scaling efficiency = (tasks/s with 2 workers) / (2 x tasks/s with 1 worker). The machine's load average
is printed, because on a shared 2-core machine other processes take cores from the workers.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.backtest.api import load_series  # noqa: E402
from core.backtest.sweep.folds import walk_forward  # noqa: E402
from core.backtest.sweep.grid import check_grid, parse_grid  # noqa: E402
from core.backtest.sweep.runner import _warmup_first, plan_tasks  # noqa: E402
from core.backtest.sweep.tasks import run_id_of, run_task  # noqa: E402
from core.config.model import load_config, market_data_dir  # noqa: E402

XAU = ("XAUUSDc", "budimanlai__forex-tick/data/XAUUSD_M5.csv")
EUR = ("EURUSDc", "01Javier__trading-eurusd/data/EURUSD_M5.csv")


def on_cluster(n: int, candles, cfg, sym: str, tasks: list[dict]) -> tuple[float, float]:
    """(wall seconds for all tasks, summed seconds the tasks themselves ran inside the workers)."""
    from dask.distributed import Client, LocalCluster, wait

    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        data = client.scatter(candles, broadcast=True, hash=False)
        conf = client.scatter(cfg, broadcast=True, hash=False)
        client.submit(run_task, data, conf, sym, "auto", tasks[0], pure=False).result()  # imports, warm caches
        t0 = time.perf_counter()
        futs = [client.submit(run_task, data, conf, sym, "auto", t, pure=False) for t in tasks]
        wait(futs)
        secs = time.perf_counter() - t0
        inside = sum(f.result()["seconds"] for f in futs)
        return secs, inside


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    logging.getLogger("distributed").setLevel(logging.WARNING)
    cfg = load_config()
    sym, rel = EUR if args.quick else XAU
    folds, grid = (2, {"exits.breakeven_trigger_r": [0.8, 1.2], "range_detection.touch_tolerance_atr": [0.2, 0.3]}) \
        if args.quick else (4, {"exits.breakeven_trigger_r": [0.8, 1.0, 1.2],
                                "range_detection.touch_tolerance_atr": [0.2, 0.3]})
    candles = load_series(cfg, sym, market_data_dir() / rel)
    g = parse_grid({"params": grid})
    combos = check_grid(cfg, sym, g)
    fold_list = walk_forward(len(candles), _warmup_first(cfg, sym, candles), folds)
    tasks = plan_tasks(fold_list, combos, run_id_of(candles, cfg, sym, "auto", g.min_trades))
    print(f"{len(tasks)} tasks: {sym} {len(candles)} M5 bars, {folds} folds x {len(combos)} grid points; "
          f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    run_task(candles, cfg, sym, "auto", tasks[0])  # warm imports
    t0 = time.perf_counter()
    for t in tasks:
        run_task(candles, cfg, sym, "auto", t)
    direct = time.perf_counter() - t0
    print(f"direct calls in this process: {direct:.2f} s = {1000 * direct / len(tasks):.0f} ms per task")
    one, inside = on_cluster(1, candles, cfg, sym, tasks)
    print(f"LocalCluster, 1 worker:  {one:.2f} s = {len(tasks) / one:.2f} tasks/s; per task vs a direct call: "
          f"{1000 * (one - direct) / len(tasks):+.0f} ms ({100 * (one / direct - 1):+.1f}%), of which Dask's dispatch "
          f"(wall minus the time inside the task) {1000 * (one - inside) / len(tasks):.0f} ms")
    two, _ = on_cluster(2, candles, cfg, sym, tasks)
    print(f"LocalCluster, 2 workers: {two:.2f} s = {len(tasks) / two:.2f} tasks/s; load average after: "
          f"{os.getloadavg()[0]:.2f}")
    eff = (one / two) / 2
    print(f"sweep: {len(tasks)} tasks, 2 workers, {len(tasks) / two:.2f} tasks/s, scaling efficiency "
          f"{100 * eff:.0f}% (2 workers vs 1)")


if __name__ == "__main__":
    main()
