"""`analyse_range_scalp_opportunity`: range detection → risk filters → strategy scoring, in the seed's order.

The work is done by the pure core (`core.analysis.pipeline.analyse`): a function of the candles per
timeframe, the clock reading `now`, an optional quote, news calendar and order-flow snapshot, and the
per-symbol config. Live trading, the monitor, backtests and `moneybot analyse --at` all call it, so
a backtest is a replay of exactly what the live bot would have decided. This module gathers those
inputs from a `Broker` or from the historical files (`MarketData`), and is the one-call entry point.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np

from core.analysis.pipeline import (  # noqa: F401 - re-exported: the public analysis API lives here
    PREFERENCE,
    AnalysisInputs,
    NoDataError,
    TimestampOutOfRangeError,
    analyse,
    time_operation,
    window_sizes,
)
from core.config.model import AppConfig, TradingConfig
from core.config.paths import resolve_path
from core.data.sources.news import NewsCalendar, NewsCalendarSource
from core.data.sources.orderflow import OrderFlowSnapshot
from core.domain.clock import Clock, SystemClock
from core.domain.exceptions import UserFacingError
from core.domain.models import AnalysisResult, NoRange
from core.domain.timeframes import Timeframe

log = logging.getLogger(__name__)


# -- feed adapters ------------------------------------------------------------------------------------
def _resolve(cfg: AppConfig, symbol: str) -> str:
    name = cfg.resolve_symbol(symbol)
    if name is None:
        raise cfg.unknown_symbol(symbol)
    return name


_TIMEFRAMES: dict[str, Timeframe] = {}


def _timeframe(name: str) -> Timeframe:
    """`Timeframe.parse`, remembered: the same member for the same name (parsing a string goes through the
    enum's constructor, a few microseconds per timeframe per analysis)."""
    tf = _TIMEFRAMES.get(name)
    if tf is None:
        tf = _TIMEFRAMES[name] = Timeframe.parse(name)
    return tf


def inputs_from_feed(symbol: str, feed: Any, cfg: AppConfig, now: float, *, news: NewsCalendar | None = None,
                     news_error: str | None = None, orderflow: OrderFlowSnapshot | None = None,
                     orderflow_error: str | None = None) -> AnalysisInputs:
    """Pull the windows from a `Broker` (live MT5 or PaperBroker): `candles(symbol, tf, count)` + `tick`."""
    tcfg = cfg.for_symbol(symbol)
    candles = {}
    for tf, size in window_sizes(tcfg).items():
        try:
            candles[tf] = feed.candles(symbol, _timeframe(tf), size)
        except (KeyError, ValueError) as e:
            log.debug("no %s candles for %s from the feed: %s", tf, symbol, e)
    try:
        tick = feed.tick(symbol)
    except Exception as e:  # a missing quote degrades to the last close, it must not abort the analysis
        log.warning("no quote for %s: %s", symbol, e)
        tick = None
    tick_time = float(tick.time) if tick is not None else None
    if tick is not None and tick.time < now - tcfg.data_quality.mt5_candles.max_age_minutes * 60:
        tick = None  # a weekend quote is not a price to trade at
    return AnalysisInputs(symbol, candles, now, tick, news, news_error, orderflow, orderflow_error,
                          feed_tick_time=tick_time)


def resolve_at(candles: np.ndarray, timeframe: str, at: float) -> float:
    """The analysis time for `--at T`: the close of the last bar opened at or before T."""
    secs = Timeframe.parse(timeframe).seconds
    t = candles["time"]
    if len(t) == 0 or at < t[0] or at >= t[-1] + secs:
        lo = _fmt(t[0]) if len(t) else "?"
        hi = _fmt(t[-1] + secs) if len(t) else "?"
        raise TimestampOutOfRangeError(f"{_fmt(at)} is outside the data ({lo} to {hi}).")
    i = int(np.searchsorted(t, at, side="right")) - 1
    return float(t[i]) + secs


def _fmt(t: float) -> str:
    import datetime as _dt

    return _dt.datetime.fromtimestamp(float(t), _dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def inputs_from_candles(symbol: str, candles: Mapping[str, np.ndarray], cfg: AppConfig, *, at: float | None = None,
                        news: NewsCalendar | None = None, news_error: str | None = None,
                        orderflow: OrderFlowSnapshot | None = None) -> AnalysisInputs:
    """Historical inputs: as of the bar at `at` (or the last bar), with `now` = that bar's close time."""
    tcfg = cfg.for_symbol(symbol)
    tf = tcfg.range_detection.timeframe
    if tf not in candles:
        raise NoDataError(f"No {tf} candles for {symbol}.")
    base = candles[tf]
    if len(base) == 0:
        raise NoDataError(f"The {tf} data for {symbol} is empty.")
    now = resolve_at(base, tf, at) if at is not None else float(base["time"][-1]) + Timeframe.parse(tf).seconds
    return AnalysisInputs(symbol, candles, now, None, news, news_error, orderflow)


def candles_from_market_data(md: Any, symbol: str, cfg: AppConfig) -> dict[str, np.ndarray]:
    """Every timeframe the analysis wants, from `core.data.catalog.MarketData` (resampled where needed)."""
    out = {}
    for tf in window_sizes(cfg.for_symbol(symbol)):
        try:
            out[tf] = md.candles(symbol, tf)
        except UserFacingError as e:
            if tf == cfg.for_symbol(symbol).range_detection.timeframe:
                raise
            log.debug("no %s data for %s: %s", tf, symbol, e)
    return out


_CALENDARS: dict[str, NewsCalendarSource] = {}


def configured_calendar(tcfg: TradingConfig, clock: Clock | None = None) -> tuple[NewsCalendar | None, str | None]:
    """The calendar named by `news.calendar_path`, through one cached source per path (never raises).

    The source re-reads the file on the wall clock (a file changes in real time), never on `clock`: a
    replay or backtest clock jumping hours per step made every send re-parse the calendar. `clock` is
    accepted for callers' symmetry; the events are judged against the caller's own `now`."""
    n = tcfg.news
    if not n.enabled or not n.calendar_path:
        return None, None
    path = str(resolve_path(n.calendar_path))
    src = _CALENDARS.get(path)
    if src is None:
        src = _CALENDARS[path] = NewsCalendarSource(path, n.cache_seconds, SystemClock())
    return src.get(), src.last_error


def analyse_range_scalp_opportunity(symbol: str, feed: Any = None, cfg: AppConfig | None = None, *,
                                    broker: Any = None, clock: Clock | None = None,
                                    at: float | None = None, news: NewsCalendar | None = None,
                                    news_error: str | None = None,
                                    orderflow: OrderFlowSnapshot | None = None,
                                    orderflow_error: str | None = None,
                                    load_news: bool = True) -> AnalysisResult:
    """The one-call entry point. `feed` is a `Broker` (live or paper: `now` comes from `clock`, else the
    broker's own clock) or a `MarketData` catalog (historical: as of `at`, else the last bar).
    Without an explicit `news` calendar the configured one is read (cached, last good copy kept).
    `broker=` is accepted as a keyword alias of `feed`."""
    feed = feed if feed is not None else broker
    if feed is None or cfg is None:
        raise TypeError("analyse_range_scalp_opportunity needs a feed (broker or MarketData) and a config")
    name = _resolve(cfg, symbol)
    tcfg = cfg.for_symbol(name)
    if news is None and load_news:
        news, news_error = configured_calendar(tcfg, clock)
    if hasattr(feed, "tick"):
        now = clock.now() if clock is not None else feed.now()
        inputs = inputs_from_feed(name, feed, cfg, now, news=news, news_error=news_error, orderflow=orderflow,
                                  orderflow_error=orderflow_error)
        result = analyse(inputs, tcfg, cfg.symbols[name], cfg.short_version)
        return _outside_data(result, feed, tcfg, now)
    else:
        inputs = inputs_from_candles(name, candles_from_market_data(feed, name, cfg), cfg, at=at, news=news,
                                     news_error=news_error, orderflow=orderflow)
    return analyse(inputs, tcfg, cfg.symbols[name], cfg.short_version)


def _outside_data(result: AnalysisResult, feed: Any, cfg: TradingConfig, now: float) -> AnalysisResult:
    """A replay clock outside the symbol's data is not a "no candles, feed down?" mystery: say plainly that
    there is no data for the symbol at the replay time, and which span the data covers."""
    span_of = getattr(feed, "data_span", None)
    if result.range is not None or not callable(span_of):
        return result
    tf = cfg.range_detection.timeframe
    try:
        span = span_of(result.symbol, tf)
    except Exception:  # noqa: BLE001 - the plain analysis answer stands
        return result
    if span is not None and span[0] <= now <= span[1] + Timeframe.parse(tf).seconds:
        return result

    def day(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")

    at = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M UTC")
    covers = f"its data covers {day(span[0])} to {day(span[1])}" if span else "there is no data file for it"
    msg = (f"There is no data for {result.symbol} at the replay time ({at}): {covers}. "
           "Restart with --replay-from inside that span to trade it.")
    details = {"first": span[0] if span else None, "last": span[1] if span else None, "now": now}
    return result.model_copy(update={"no_range": NoRange(reason="no_data_at_replay_time", message=msg, details=details)})
