"""`moneybot backtest SYMBOL --data PATH [--from --to] [--strategy NAME|auto] [--out DIR]`.

Thin on purpose: the backtest itself is `core.backtest.api.run_backtest` (the chat `/backtest`
command calls the same function from a worker thread).
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from core.domain.exceptions import UserFacingError


def register(sub) -> None:
    p = sub.add_parser("backtest", help="backtest a symbol through the live analysis/execution/exit code")
    p.add_argument("symbol", help="symbol as configured, e.g. XAUUSDc")
    p.add_argument("--data", help="candle file (M5, or finer bars resampled to M5); default: the configured M5 data")
    p.add_argument("--from", dest="start", help="first decision bar, UTC (YYYY-MM-DD[THH:MM] or epoch seconds)")
    p.add_argument("--to", dest="end", help="last decision bar, UTC")
    p.add_argument("--days", type=float, help="only the last N days of the data")
    p.add_argument("--strategy", default="auto", help="auto (top-scored, default) or a strategy name")
    p.add_argument("--out", default="data/backtests", help="output directory (default: data/backtests/<SYMBOL>)")
    p.add_argument("--tz-offset", type=float, dest="tz_offset",
                   help="hours to subtract from the file's timestamps (default: the symbol's data_tz_offset_hours)")
    p.add_argument("--split", help="in-sample/out-of-sample split date (default: 70%% of the period)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--set", action="append", dest="set_params", metavar="PATH=VALUE",
                   help="override one config setting for this symbol, e.g. --set exits.breakeven_trigger_r=1.0 "
                   "(repeatable; the keys of a sweep grid)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from bot.cli import time_option, user_path
    from core.api import check_params, metrics_table, parse_set, run_backtest, write_report
    from core.config.model import load_config

    cfg = load_config(args.config) if getattr(args, "config", None) else load_config()
    name = cfg.resolve_symbol(args.symbol)
    if name is None:  # before the symbol becomes part of the --out path
        raise cfg.unknown_symbol(args.symbol)
    if getattr(args, "set_params", None):
        cfg = check_params(cfg, name, parse_set(args.set_params))
    # every option is checked before minutes of CPU are spent, and before anything is written
    if args.days is not None and not (math.isfinite(args.days) and args.days > 0):
        raise UserFacingError(f"--days must be a positive, finite number of days, e.g. --days 30 (got {args.days:g}).")
    if args.tz_offset is not None:
        if args.data is None:
            raise UserFacingError("--tz-offset only applies to a --data file; the configured data's clock is "
                                  "symbols.<SYMBOL>.data_timezone in the config.")
        if not -14 <= args.tz_offset <= 14:
            raise UserFacingError(f"--tz-offset must be between -14 and 14 hours (got {args.tz_offset:g}).")
    start, end = time_option(args.start, "--from"), time_option(args.end, "--to")
    split = time_option(args.split, "--split")
    data = user_path(args.data) if args.data else None
    console = Console(stderr=False)
    out = Path(args.out)
    if out.name != name:
        out = out / name
    _check_out(out, args.out)
    show = not args.no_progress and sys.stderr.isatty()
    with Progress(TextColumn("backtest {task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} bars"),
                  TimeRemainingColumn(), console=Console(stderr=True), disable=not show) as bar:
        task = bar.add_task(name, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = run_backtest(cfg, args.symbol, data=data, days=args.days, start=start, end=end,
                              strategy=args.strategy, progress=progress, tz_offset_hours=args.tz_offset,
                              split_time=split)
    try:
        write_report(report, out)
    except OSError as e:
        raise UserFacingError(f"cannot write the backtest report to {out}: {e.strerror or e}.") from None
    console.print(metrics_table(report))
    console.print(
        f"{report.bars} bars in {report.seconds:.1f} s ({report.bars_per_second:,.0f} bars/s), "
        f"{report.analysis_calls} analysis calls, costs: {_costs(report.costs)}"
    )
    for kind, path in report.files.items():
        console.print(f"{kind}: {path}")
    return 0


def _check_out(out: Path, typed: str) -> None:
    """The report folder must be creatable: found out after the run, a typo in --out cost the whole run."""
    p = out
    while not p.exists() and p.parent != p:
        p = p.parent
    if not p.is_dir():
        raise UserFacingError(f"--out {typed}: {p} is not a folder.")
    if not os.access(p, os.W_OK | os.X_OK):
        raise UserFacingError(f"--out {typed}: no permission to write in {p}.")


def _costs(costs) -> str:
    """`spread from data (bar spread column), slippage_points 2, ...` rather than a Python dict repr."""
    if not isinstance(costs, dict):
        return str(costs)
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in costs.items())
