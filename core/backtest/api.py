"""`run_backtest`: the one call the CLI and the chat `/backtest` command make.

Blocking and CPU-bound by design: chat adapters run it in a worker thread (`asyncio.to_thread`) and
pass a `progress(done, total)` callback (called from that thread, at most ~200 times per run) to edit
their progress message. It never touches the live store or the live broker.
"""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from core.backtest.engine import BacktestEngine, BacktestSpec, Progress
from core.backtest.live import AnalyseFn
from core.backtest.report import BacktestReport, write_report
from core.config.model import AppConfig
from core.config.paths import resolve_path
from core.data.catalog import MarketData
from core.data.loaders import load_candles
from core.data.resample import infer_step, resample
from core.domain.exceptions import UserFacingError
from core.domain.timeframes import Timeframe


def parse_when(text: str | None) -> float | None:
    """'2025-03-01', '2025-03-01T12:00' (UTC) or epoch seconds → epoch seconds."""
    if text is None or str(text).strip() == "":
        return None
    s = str(text).strip()
    try:
        return float(s)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise UserFacingError(f"'{s}' is not a date: use YYYY-MM-DD, YYYY-MM-DDTHH:MM (UTC) or epoch seconds") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def load_series(cfg: AppConfig, symbol: str, data: str | Path | None = None, *,
                timeframe: Timeframe = Timeframe.M5, tz_offset_hours: float | None = None) -> np.ndarray:
    """The primary-timeframe bars: from `data` (any supported file, finer bars resampled) or the config."""
    if data is None:
        return MarketData(cfg).candles(symbol, timeframe)
    path = resolve_path(str(data))
    spec = cfg.symbols[symbol]
    if tz_offset_hours is None:  # the symbol's own server clock (zone with DST, or fixed offset)
        candles = load_candles(path, tz_offset_hours=spec.data_tz_offset_hours, server_tz=spec.data_timezone)
    else:
        candles = load_candles(path, tz_offset_hours=tz_offset_hours)
    if len(candles) < 2:
        raise UserFacingError(f"{path}: fewer than two bars, nothing to backtest")
    step = infer_step(candles)
    if step == timeframe.seconds:
        return candles
    if step > timeframe.seconds or timeframe.seconds % step:
        raise UserFacingError(
            f"{path} has {step // 60}-minute bars; a {timeframe.value} backtest needs bars of {timeframe.value} or finer"
        )
    return resample(candles, timeframe, drop_incomplete=True)


def run_backtest(
    cfg: AppConfig,
    symbol: str,
    *,
    data: str | Path | None = None,
    days: float | None = None,
    start: str | float | None = None,
    end: str | float | None = None,
    strategy: str = "auto",
    progress: Progress | None = None,
    out_dir: str | Path | None = None,
    tz_offset_hours: float | None = None,
    split_time: float | None = None,
    analyse_fn: AnalyseFn | None = None,
) -> BacktestReport:
    """Backtest `symbol` through the live code; writes the output files when `out_dir` is given.

    `days` keeps the last N days of the series (history before them is still used to warm up);
    `start`/`end` bound the decision bars (dates in UTC). Raises UserFacingError for bad input.
    """
    name = MarketData(cfg).symbol_name(symbol)
    if days is not None and days <= 0:
        raise UserFacingError("days must be a positive number")
    known = set(cfg.strategy_rr)
    if strategy != "auto" and strategy not in known:
        raise UserFacingError(f"unknown strategy '{strategy}' (use auto or one of: {', '.join(sorted(known))})")
    candles = load_series(cfg, name, data, tz_offset_hours=tz_offset_hours)
    t0 = parse_when(start) if not isinstance(start, float) else start
    t1 = parse_when(end) if not isinstance(end, float) else end
    if days is not None:
        last = float(candles["time"][-1])
        t0 = max(t0 or -np.inf, last - days * 86400.0)
    if t0 is not None and t1 is not None and t0 >= t1:
        raise UserFacingError("the start of the backtest must be before its end")
    if t0 is not None and len(candles) and t0 > float(candles["time"][-1]):
        raise UserFacingError(f"the data ends before {datetime.fromtimestamp(t0, UTC):%Y-%m-%d}")
    spec = BacktestSpec(symbol=name, candles=candles, start=t0, end=t1, strategy=strategy, split_time=split_time)
    engine = BacktestEngine(cfg, spec, progress=progress, analyse_fn=analyse_fn)
    if engine.last - engine.first < 1:
        raise UserFacingError(f"not enough {name} bars in the chosen period to backtest (need more than the warm-up)")
    report = engine.run()
    if out_dir is not None:
        write_report(report, out_dir)
    return report
