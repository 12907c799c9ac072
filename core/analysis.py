"""`analyse_range_scalp_opportunity`: range detection → risk filters → strategy scoring, in the seed's order.

The core (`analyse`) is a pure function of its inputs: the candles per timeframe, the clock reading
`now`, an optional quote, news calendar and order-flow snapshot, and the per-symbol config. Live
trading, the monitor, backtests and `moneybot analyse --at` all call it, so a backtest is a replay
of exactly what the live bot would have decided. It only ever looks at fixed-size trailing windows
of bars that had *closed* by `now`, which keeps each call well under a millisecond and makes
look-ahead impossible by construction (see `core.range.bars`).

Feed adapters (`inputs_from_feed`, `inputs_from_market_data`) gather those inputs from a `Broker`
or from the historical files, and `analyse_range_scalp_opportunity` is the one-call entry point.
"""
from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.brokers.base import Tick
from core.clock import Clock, SystemClock
from core.config import AppConfig, SymbolSpec, TradingConfig, resolve_path
from core.exceptions import UnknownSymbolError, UserFacingError
from core.filters.context import AnalysisContext, Indicators
from core.filters.risk_filters import RangeScalpingRiskFilters
from core.models import AnalysisResult, NoRange, RangeStructure
from core.range.bars import Bars
from core.range.detector import RangeBoundaryDetector
from core.range.lastvalues import atr_last, bollinger_last, rsi_last, vwap_last
from core.scoring.scorer import RangeScalpingScorer
from core.sessions import active_sessions
from core.sources.news import NewsCalendar, NewsCalendarSource
from core.sources.orderflow import OrderFlowSnapshot
from core.timeframes import Timeframe

log = logging.getLogger(__name__)

WARMUP_FACTOR = 3  # bars of warm-up per indicator period, so Wilder smoothing has settled
PREFERENCE = ("dynamic", "session", "previous_day")


class TimestampOutOfRangeError(UserFacingError):
    pass


class NoDataError(UserFacingError):
    pass


# -- timing -------------------------------------------------------------------------------------------
class time_operation:  # noqa: N801 - used as a decorator and a context manager, like the seed's
    """Time a block or function; log a warning when it takes longer than `threshold_ms`.

    Only slow operations are logged, so it can wrap hot paths without log spam; `sink` (a dict)
    collects every duration for the result's `timings_ms`.
    """

    def __init__(self, name: str, threshold_ms: float = 100.0, sink: dict[str, float] | None = None):
        self.name, self.threshold_ms, self.sink = name, threshold_ms, sink
        self._t0 = 0.0

    def __enter__(self) -> time_operation:
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        ms = (time.perf_counter() - self._t0) * 1000.0
        if self.sink is not None:
            self.sink[self.name] = round(ms, 4)
        if ms > self.threshold_ms:
            log.warning("slow operation: %s took %.1f ms (threshold %.0f ms)", self.name, ms, self.threshold_ms)

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with time_operation(self.name, self.threshold_ms, self.sink):
                return fn(*args, **kwargs)

        return wrapper


# -- inputs -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AnalysisInputs:
    """Everything `analyse` needs. `candles` may hold more than the window or still-forming bars:
    only bars closed by `now` are used."""

    symbol: str
    candles: Mapping[str, np.ndarray]
    now: float
    tick: Tick | None = None
    news: NewsCalendar | None = None
    news_error: str | None = None
    orderflow: OrderFlowSnapshot | None = None


_SIZES: dict[int, tuple[TradingConfig, dict[str, int]]] = {}
_SESSION_TF: dict[int, tuple[TradingConfig, str]] = {}


def window_sizes(cfg: TradingConfig) -> dict[str, int]:
    """Bars per timeframe: the primary window spans a full day (session VWAP), H1 five days (previous day)."""
    hit = _SIZES.get(id(cfg))
    if hit is not None and hit[0] is cfg:  # configs are frozen: the sizes cannot change under us
        return hit[1]
    out = _window_sizes(cfg)
    if len(_SIZES) > 64:
        _SIZES.clear()
    _SIZES[id(cfg)] = (cfg, out)
    return out


def _window_sizes(cfg: TradingConfig) -> dict[str, int]:
    rd, ea = cfg.range_detection, cfg.effective_atr
    warm = WARMUP_FACTOR * max(ea.atr_period, ea.bb_period, ea.rsi_period)
    base = max(rd.lookback_bars, rd.min_candles) + warm
    out: dict[str, int] = {}
    for tf in dict.fromkeys([rd.timeframe, *rd.nested_timeframes, "H1"]):
        secs = Timeframe.parse(tf).seconds
        if tf == rd.timeframe:
            out[tf] = max(base, math.ceil(86400 / secs) + 12)
        else:  # H1 spans five days (previous trading day across a weekend); others 30 h (a whole session)
            out[tf] = max(base, math.ceil((5 * 86400 if tf == "H1" else 30 * 3600) / secs))
    return out


def _session_tf(cfg: TradingConfig, sizes: dict[str, int]) -> str:
    """The finest timeframe whose window spans more than a day: the session range needs its whole session."""
    for tf in sorted(sizes, key=lambda t: Timeframe.parse(t).seconds):
        if sizes[tf] * Timeframe.parse(tf).seconds >= 30 * 3600:
            return tf
    return cfg.range_detection.timeframe


def _last(x: np.ndarray, k: int = 1) -> float:
    return float(x[-k]) if len(x) >= k else float("nan")


def _indicators(cfg: TradingConfig, bars: Bars) -> Indicators:
    """Current values only (see `core.range.lastvalues`); VWAP is today's session, reset at 00:00 UTC."""
    ea = cfg.effective_atr
    a = atr_last(bars.high, bars.low, bars.close, ea.atr_period)
    mid, up, lo = bollinger_last(bars.close, ea.bb_period, ea.bb_std)
    r_prev, r = rsi_last(bars.close, ea.rsi_period, 2)
    day = math.floor((bars.time[-1]) / 86400.0) * 86400.0
    today = int(len(bars) - np.searchsorted(bars.time, day, side="left"))
    s = slice(len(bars) - today, len(bars))
    vwap, vsig = vwap_last(bars.high[s], bars.low[s], bars.close[s], bars.volume[s])
    return Indicators(atr=a, rsi=r, rsi_prev=r_prev, bb_mid=mid, bb_upper=up, bb_lower=lo, vwap=vwap,
                      vwap_sigma=vsig, vwap_time=bars.last_close_time if today else None, vwap_bars=today)


def _window_vwap(bars: Bars) -> float:
    """Fallback VWAP over the whole range window (equal weights when no tick volume was reported)."""
    tp = (bars.high + bars.low + bars.close) / 3.0
    v = bars.volume
    return float(np.dot(tp, v) / v.sum()) if v.sum() > 0 else float(tp.mean())


# -- the pure core ------------------------------------------------------------------------------------
_FILTERS = RangeScalpingRiskFilters()
_SCORER = RangeScalpingScorer()


def analyse(inputs: AnalysisInputs, cfg: TradingConfig, spec: SymbolSpec, config_version: str = "") -> AnalysisResult:
    timings: dict[str, float] = {}
    slow = cfg.performance.slow_operation_ms
    rd = cfg.range_detection
    tf = rd.timeframe
    now = float(inputs.now)
    sizes = window_sizes(cfg)
    detector = RangeBoundaryDetector(cfg, inputs.symbol)

    with time_operation("analysis.total", slow, timings):
        with time_operation("analysis.prepare", slow, timings):
            views: dict[str, Bars] = {}
            for name, size in sizes.items():
                arr = inputs.candles.get(name)
                if arr is not None:
                    views[name] = Bars.closed_window(arr, name, now, size)
            if tf not in views:
                raise NoDataError(f"No {tf} candles for {inputs.symbol}: the analysis needs them.")
            bars = views[tf]
            as_of = bars.last_close_time or now
            if len(bars) == 0:
                ind = Indicators(*([float("nan")] * 8), None, 0)
            else:
                ind = _indicators(cfg, bars)
            atrs = {name: atr_last(b.high, b.low, b.close, cfg.effective_atr.atr_period) if name != tf else ind.atr
                    for name, b in views.items()}

        with time_operation("analysis.range_detection", slow, timings):
            rng, no_range, prev_day, higher = _detect(detector, cfg, views, atrs, tf, as_of)

        ctx = AnalysisContext(symbol=inputs.symbol, cfg=cfg, spec=spec, now=now, bars=bars, ind=ind,
                              sessions=active_sessions(cfg.sessions, now), rng=rng, no_range=no_range,
                              prev_day=prev_day, tick=inputs.tick, news=inputs.news, news_error=inputs.news_error,
                              orderflow=inputs.orderflow, higher_tf=higher)

        with time_operation("analysis.filters", slow, timings):
            dq = _FILTERS.check_data_quality(ctx)
            if ctx.fallbacks.get("vwap") == "use_session_vwap" and len(bars):
                ctx.ind.vwap = _window_vwap(bars.tail(rd.lookback_bars))
            results, confluence, _ = _FILTERS.evaluate_all(ctx, detector, data_quality=dq)
            failures = [f for f in results if not f.passed and f.blocking]

        with time_operation("analysis.scoring", slow, timings):
            strategies, note = [], None
            if rng is not None and len(bars):
                scored = _SCORER.score_all_strategies(ctx)
                scored = _SCORER.apply_dynamic_strategy_weights(scored, ctx.session_names, rng.expansion_state)
                scored = _SCORER.apply_min_score(scored, cfg.entry_filters.min_strategy_score)
                strategies, note = _SCORER.check_strategy_conflicts(scored)
            if note:
                ctx.warnings.append(note)

        top = next((s for s in strategies if s.viable), None)
        passed = not failures and top is not None
        if rng is None:
            confidence = 0.0
        else:
            confidence = 0.5 * confluence + 0.5 * (top.score if top else 0.0)
            if failures or top is None:
                confidence = min(confidence, 40.0)  # a blocked setup must never reach an auto-execute threshold
        stamps = {f"candles_{k}": v.last_close_time for k, v in views.items() if v.last_close_time is not None}
        stamps["now"] = now
        if inputs.news is not None and inputs.news.fetched_at is not None:
            stamps["news_calendar"] = inputs.news.fetched_at
        if inputs.orderflow is not None:
            stamps["orderflow"] = inputs.orderflow.timestamp
        if inputs.tick is not None:
            stamps["tick"] = inputs.tick.time
    if not strategies and rng is not None:
        ctx.warnings.append("No strategy has a setup at the current price: wait for price to reach an edge of the range.")
    return AnalysisResult(
        symbol=inputs.symbol, timeframe=tf, as_of=as_of, range=rng, no_range=no_range, filters=results,
        passed=passed, strategies=strategies, confidence=round(float(np.clip(confidence, 0, 100)), 2),
        warnings=ctx.warnings, config_version=config_version, data_timestamps=stamps, timings_ms=timings,
        session="+".join(ctx.session_names) or "off_hours", confluence_score=confluence,
    )


def _detect(detector: RangeBoundaryDetector, cfg: TradingConfig, views: dict[str, Bars], atrs: dict[str, float],
            tf: str, as_of: float) -> tuple[RangeStructure | None, NoRange | None, tuple[float, float] | None, dict]:
    bars = views[tf]
    atr = atrs[tf]
    if len(bars) < cfg.range_detection.min_candles or not (atr > 0):
        need = max(cfg.range_detection.min_candles, cfg.effective_atr.atr_period)
        return None, detector._too_few(bars, need, "range"), None, {}
    found: dict[str, RangeStructure | NoRange] = {"dynamic": detector.detect_range(bars, "dynamic", atr=atr, as_of=as_of)}
    stf = _SESSION_TF.get(id(cfg))
    if stf is None or stf[0] is not cfg:
        stf = _SESSION_TF[id(cfg)] = (cfg, _session_tf(cfg, window_sizes(cfg)))
    stf = stf[1]
    if stf in views and atrs.get(stf, 0) > 0:
        found["session"] = detector.detect_range(views[stf], "session", atr=atrs[stf], as_of=as_of)
    prev_day = None
    if "H1" in views and atrs.get("H1", 0) > 0:
        pd = detector.detect_range(views["H1"], "previous_day", atr=atrs["H1"], as_of=as_of, apply_width_limits=False)
        if isinstance(pd, RangeStructure):
            prev_day = (pd.range_high, pd.range_low)
            found["previous_day"] = detector.check_width(pd) or pd
        else:
            found["previous_day"] = pd
    cands = [r for r in found.values() if isinstance(r, RangeStructure)]
    higher = detector.nested_ranges({k: (v, atrs[k]) for k, v in views.items()
                                     if k != tf and k in cfg.range_detection.nested_timeframes})
    if not cands:
        first = found["dynamic"]
        others = {k: v.reason for k, v in found.items() if isinstance(v, NoRange)}
        return None, first.model_copy(update={"details": {**first.details, "by_type": others}}), prev_day, higher
    price = float(bars.close[-1])
    inside = [r for r in cands if r.range_low - atr <= price <= r.range_high + atr]
    pool = inside or cands
    best = min(pool, key=lambda r: (not r.validated, PREFERENCE.index(r.range_type)))
    return best.model_copy(update={"nested_ranges": higher}), None, prev_day, higher


# -- feed adapters ------------------------------------------------------------------------------------
def _resolve(cfg: AppConfig, symbol: str) -> str:
    name = cfg.resolve_symbol(symbol)
    if name is None:
        raise UnknownSymbolError(symbol, cfg.suggest_symbols(symbol))
    return name


def inputs_from_feed(symbol: str, feed: Any, cfg: AppConfig, now: float, *, news: NewsCalendar | None = None,
                     news_error: str | None = None, orderflow: OrderFlowSnapshot | None = None) -> AnalysisInputs:
    """Pull the windows from a `Broker` (live MT5 or PaperBroker): `candles(symbol, tf, count)` + `tick`."""
    tcfg = cfg.for_symbol(symbol)
    candles = {}
    for tf, size in window_sizes(tcfg).items():
        try:
            candles[tf] = feed.candles(symbol, Timeframe.parse(tf), size)
        except (KeyError, ValueError) as e:
            log.debug("no %s candles for %s from the feed: %s", tf, symbol, e)
    try:
        tick = feed.tick(symbol)
    except Exception as e:  # a missing quote degrades to the last close, it must not abort the analysis
        log.warning("no quote for %s: %s", symbol, e)
        tick = None
    if tick is not None and tick.time < now - tcfg.data_quality.mt5_candles.max_age_minutes * 60:
        tick = None  # a weekend quote is not a price to trade at
    return AnalysisInputs(symbol, candles, now, tick, news, news_error, orderflow)


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
    """The calendar named by `news.calendar_path`, through one cached source per path (never raises)."""
    n = tcfg.news
    if not n.enabled or not n.calendar_path:
        return None, None
    path = str(resolve_path(n.calendar_path))
    src = _CALENDARS.get(path)
    if src is None:
        src = _CALENDARS[path] = NewsCalendarSource(path, n.cache_seconds, SystemClock())
    if clock is not None:
        src.clock = clock
    return src.get(), src.last_error


def analyse_range_scalp_opportunity(symbol: str, feed: Any = None, cfg: AppConfig | None = None, *,
                                    broker: Any = None, clock: Clock | None = None,
                                    at: float | None = None, news: NewsCalendar | None = None,
                                    news_error: str | None = None,
                                    orderflow: OrderFlowSnapshot | None = None,
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
        inputs = inputs_from_feed(name, feed, cfg, now, news=news, news_error=news_error, orderflow=orderflow)
    else:
        inputs = inputs_from_candles(name, candles_from_market_data(feed, name, cfg), cfg, at=at, news=news,
                                     news_error=news_error, orderflow=orderflow)
    return analyse(inputs, tcfg, cfg.symbols[name], cfg.short_version)
