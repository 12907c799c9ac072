"""`moneybot analyse SYMBOL [--data PATH] [--at TIMESTAMP] [--json]`: the `/scalp` analysis on historical data.

`--at` replays the analysis as of a past bar using only the bars that had closed by then (the
same code path as live and backtests), so a trader can ask "what would the bot have said at the
London open on Tuesday?". Bad input (unknown symbol, missing file, a time outside the data) is one
clear line and exit code 2, via `UserFacingError`.
"""
from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from core.api import (
    MarketData,
    analyse,
    candles_from_market_data,
    configured_calendar,
    infer_step,
    inputs_from_candles,
    load_candles,
    resample,
    window_sizes,
)
from core.config.loading import load_config
from core.config.model import AppConfig
from core.config.paths import resolve_path
from core.domain.exceptions import UserFacingError
from core.domain.models import AnalysisResult
from core.domain.timeframes import Timeframe


def register(sub) -> None:
    p = sub.add_parser("analyse", aliases=["analyze"], help="analyse a symbol for a range scalp (historical data)")
    p.add_argument("symbol", help="symbol as the broker names it, e.g. XAUUSDc")
    p.add_argument("--data", metavar="PATH", help="candle file to use instead of the configured data")
    p.add_argument("--at", metavar="TIMESTAMP", help="analyse as of the close of the bar that opens at this time, using only "
                        "bars closed by then (UTC ISO time or epoch seconds)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(func=_run)


def parse_timestamp(text: str) -> float:
    """Epoch seconds, or an ISO date/time read as UTC unless it carries its own offset."""
    from bot.cli import usable_time

    s = text.strip()
    try:
        v = float(s)
        if math.isfinite(v):
            v = v / 1000.0 if v > 1e11 else v  # accept epoch milliseconds too
            if not usable_time(v):
                raise UserFacingError(f"--at: '{s}' is not a time I can use: "
                                      "give a UTC date like 2025-06-02T10:00 or epoch seconds.")
            return v
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise UserFacingError(
            f"I can't read the time '{text}': use UTC like 2025-06-02T10:00 or epoch seconds."
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def candles_from_file(path: str | Path, symbol: str, cfg: AppConfig) -> dict[str, np.ndarray]:
    """One candle file → every timeframe the analysis wants (coarser ones resampled from it)."""
    spec = cfg.symbols[symbol]
    arr = load_candles(path if isinstance(path, Path) else resolve_path(path), tz_offset_hours=spec.data_tz_offset_hours, server_tz=spec.data_timezone)
    if len(arr) < 2:
        raise UserFacingError(f"{path}: has fewer than two candles, nothing to analyse.")
    step = infer_step(arr)
    primary = cfg.for_symbol(symbol).range_detection.timeframe
    out: dict[str, np.ndarray] = {}
    for tf in window_sizes(cfg.for_symbol(symbol)):
        secs = Timeframe.parse(tf).seconds
        if secs == step:
            out[tf] = arr
        elif secs > step and secs % step == 0:
            out[tf] = resample(arr, tf, source_seconds=step)
    if primary not in out:
        raise UserFacingError(
            f"{path}: its bars are {step // 60} minutes long; the analysis needs {primary} bars or finer."
        )
    return out


def run_analysis(cfg: AppConfig, symbol: str, *, data: str | Path | None = None, at: float | None = None,
                 market: MarketData | None = None) -> AnalysisResult:
    name = cfg.resolve_symbol(symbol)
    if name is None:
        raise cfg.unknown_symbol(symbol)
    candles = candles_from_file(data, name, cfg) if data else candles_from_market_data(market or MarketData(cfg), name, cfg)
    tcfg = cfg.for_symbol(name)
    news, err = configured_calendar(tcfg)
    inputs = inputs_from_candles(name, candles, cfg, at=at, news=news, news_error=err)
    return analyse(inputs, tcfg, cfg.symbols[name], cfg.short_version)


def _run(args) -> int:
    from bot.cli import user_path

    cfg = load_config(args.config)
    at = parse_timestamp(args.at) if args.at else None
    data = user_path(args.data) if args.data else None
    result = run_analysis(cfg, args.symbol, data=data, at=at)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        spec = cfg.symbols.get(result.symbol)
        render(result, spec.digits if spec is not None else None)
    return 0


def _t(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _p(x: float, digits: int = 5) -> str:
    return f"{x:.{digits}f}"


def render(r: AnalysisResult, digits: int | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    verdict = "[bold green]TRADEABLE[/]" if r.passed else "[bold red]NO TRADE[/]"
    # two short lines (verdict first), not one that an 80-column terminal wraps after a dangling " · "
    con.print(f"[bold]{r.symbol}[/] {r.timeframe} as of {_t(r.as_of)} · {verdict}")
    con.print(f"session {r.session} · confidence {r.confidence:.0f}/100 · config {r.config_version}")
    if digits is None:  # the symbol's own precision when known; a guess from the price level otherwise
        digits = 2 if (r.range and r.range.range_high > 100) else 5
    if r.range is not None:
        g = r.range
        t = Table(title="Range", show_header=False)
        t.add_row("type", f"{g.range_type} ({g.timeframe})", "validated", "yes" if g.validated else "no")
        t.add_row("high / low", f"{_p(g.range_high, digits)} / {_p(g.range_low, digits)}", "mid", _p(g.range_mid, digits))
        t.add_row("width", f"{g.range_width_pct:.2f}% · {g.range_width_atr:.1f} ATR", "touches top/bottom",
                  f"{g.touch_count.top}/{g.touch_count.bottom}")
        t.add_row("state", g.expansion_state, "nested", ", ".join(g.nested_ranges) or "-")
        con.print(t)
    elif r.no_range is not None:
        con.print(f"[bold]No range:[/] {r.no_range.message}")
    ft = Table(title="Checks")
    ft.add_column("check")
    ft.add_column("")
    ft.add_column("why")
    for f in r.filters:
        mark = "[green]pass[/]" if f.passed else ("[red]FAIL[/]" if f.blocking else "[yellow]warn[/]")
        ft.add_row(f.name, mark, f.reason)
    con.print(ft)
    if r.strategies:
        st = Table(title="Strategies")
        # under NO TRADE no strategy is tradeable, whatever its own score says ("viable yes" read as "go")
        for col in ("strategy", "side", "entry", "stop", "target", "R:R", "score", "tradeable"):
            st.add_column(col)
        for s in r.strategies:
            ok = ("yes" if r.passed else "blocked") if s.viable else "no"
            st.add_row(s.strategy, s.direction.value, _p(s.entry, digits), _p(s.stop_loss, digits),
                       _p(s.take_profit, digits), f"{s.rr:.2f}", f"{s.score:.0f}", ok)
        con.print(st)
        for s in r.strategies:
            con.print(f"  [bold]{s.strategy}[/]: {s.reason}")
    for w in r.warnings:
        con.print(f"[yellow]note:[/] {w}")
