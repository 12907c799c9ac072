"""`moneybot sweep SYMBOL --grid GRID.json [--data FILE] [--folds K] [--objective NAME] [--scheduler ADDR]
[--workers N] [--out DIR] [--resume]`: walk-forward parameter sweep on Dask.

Thin: the sweep is `core.api.sweep` (core/backtest/sweep/). This prints the progress bar and the
in-sample vs out-of-sample table.
"""
from __future__ import annotations

import sys
from datetime import UTC, datetime

from core.domain.exceptions import UserFacingError


def register(sub) -> None:
    p = sub.add_parser("sweep", help="walk-forward parameter sweep over a JSON grid, on a Dask cluster")
    p.add_argument("symbol", help="symbol as configured, e.g. XAUUSDc")
    p.add_argument("--grid", required=True, help="grid file (JSON): {\"params\": {\"section.setting\": [values] | "
                   "{\"start\", \"stop\", \"step\"}}, \"min_trades\": 20}")
    p.add_argument("--data", help="candle file (M5, or finer bars resampled to M5); default: the configured M5 data")
    p.add_argument("--folds", type=int, default=4, help="walk-forward folds in time order (default 4)")
    p.add_argument("--objective", default="expectancy_r",
                   help="what picks the in-sample best: expectancy_r (default), net_pnl, profit_factor, win_rate")
    p.add_argument("--scheduler", help="address of an existing Dask scheduler, e.g. tcp://host:8786 "
                   "(default: a local cluster, one worker process per core)")
    p.add_argument("--workers", type=int, help="worker processes of the local cluster (default: one per core)")
    p.add_argument("--out", default="data/sweeps", help="output directory (default: data/sweeps/<SYMBOL>)")
    p.add_argument("--resume", action="store_true", help="continue a crashed sweep: finished tasks are not rerun")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def _day(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")


def _r(x: float | None) -> str:
    return "-" if x is None else f"{x:+.3f}"


def tasks_line(run) -> str:
    """Where each task's result came from. An out-of-sample task whose bars and params are an in-sample task's
    is that backtest, taken rather than run again: it is not "from the resume log" on a first run."""
    how = [f"{run.ran} run now"]
    if run.twins:
        how.append(f"{run.twins} the same backtest as an in-sample task")
    if run.reused - run.twins:
        how.append(f"{run.reused - run.twins} from the resume log")
    return f"{run.summary.tasks} tasks ({', '.join(how)}) on {run.workers or 'no'} workers in {run.seconds:.1f} s"


def _run(args) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.table import Table

    from bot.cli import user_path
    from core.api import sweep
    from core.config.loading import load_config

    cfg = load_config(args.config) if getattr(args, "config", None) else load_config()
    name = cfg.resolve_symbol(args.symbol)
    if name is None:
        raise cfg.unknown_symbol(args.symbol)
    if args.workers is not None and args.workers < 1:
        raise UserFacingError(f"--workers must be at least 1 (got {args.workers})")
    if args.workers is not None and args.scheduler:
        raise UserFacingError("--workers sizes the local cluster; with --scheduler the cluster's own workers are used")
    out = Path(args.out)
    if out.name != name:
        out = out / name
    console = Console()
    console = Console(width=max(console.width, 132))  # the fold table is wide; piped output is 80 by default
    show = not args.no_progress and sys.stderr.isatty()
    with Progress(TextColumn("sweep {task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} tasks"),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True),
                  disable=not show) as bar:
        task = bar.add_task(name, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        run = sweep(cfg, name, user_path(args.grid), data=user_path(args.data) if args.data else None,
                    folds=args.folds, objective=args.objective, scheduler=args.scheduler, workers=args.workers,
                    out_dir=out, resume=args.resume, progress=progress)
    s = run.summary
    t = Table(title=f"{s.symbol} walk-forward: best in-sample params judged out of sample")
    extra = s.objective != "expectancy_r"
    cols = ["fold", "in-sample", "out-of-sample", "best in-sample params", "IS n", "IS exp R", "OOS n", "OOS exp R"]
    if extra:
        cols[5:5] = [f"IS {s.objective}"]
        cols += [f"OOS {s.objective}"]
    for col in [*cols, "note"]:
        t.add_column(col, justify="right" if col.startswith(("IS ", "OOS ")) else "left")
    for f in s.folds:
        params = "\n".join(f"{k}={v}" for k, v in (f.params or {}).items()) or "-"
        row = [str(f.fold + 1), f"{_day(f.is_start)}\n→ {_day(f.is_end)}", f"{_day(f.oos_start)}\n→ {_day(f.oos_end)}",
               params, str(f.is_trades), _r(f.is_expectancy_r), str(f.oos_trades), _r(f.oos_expectancy_r)]
        if extra:
            row[5:5] = [_r(f.is_objective)]
            row += [_r(f.oos_objective)]
        t.add_row(*row, f.note)
    console.print(t)
    ci = s.oos_expectancy_r_ci
    ci_txt = f"[{ci.low:+.3f}, {ci.high:+.3f}]" if ci.low is not None else "n/a"
    console.print(f"objective: {s.objective_text}")
    console.print(f"in-sample (best params, mean over folds): {_r(s.is_mean_expectancy_r)} R per trade · "
                  f"out-of-sample: {_r(ci.mean)} R per trade over {s.oos_trades} trades, "
                  f"{int(100 * ci.confidence)}% bootstrap CI {ci_txt} R")
    console.print(s.verdict)
    console.print(tasks_line(run))
    for kind, path in s.files.items():
        console.print(f"{kind}: {path}")
    return 0
