"""The pure analysis core: (candles up to `now`, quote, calendar, order flow, config) → AnalysisResult.

Range detection → risk filters → strategy scoring, in the seed's order, each stage timed by
`time_operation`. It only ever looks at fixed-size trailing windows of bars that had *closed* by
`now`, which keeps a call well under a millisecond and makes look-ahead impossible by construction
(see `core.analysis.range.bars`). Feed adapters and the one-call entry point live in `core.analysis.facade`.
"""
from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from core.analysis.context import AnalysisContext, Indicators
from core.analysis.filters.risk_filters import RangeScalpingRiskFilters
from core.analysis.range.bars import Bars
from core.analysis.range.detector import RangeBoundaryDetector, RangeCandidate
from core.analysis.range.lastvalues import atr_last, bollinger_last, clip, rsi_last, vwap_last
from core.analysis.scoring.scorer import RangeScalpingScorer
from core.brokers.base import Tick
from core.config.market import SymbolSpec
from core.config.model import TradingConfig
from core.data.sources.news import NewsCalendar
from core.data.sources.orderflow import OrderFlowSnapshot
from core.domain.exceptions import UserFacingError
from core.domain.models import AnalysisResult, NoRange, RangeStructure
from core.domain.sessions import active_sessions
from core.domain.timeframes import Timeframe
from core.domain.wording import price_text

log = logging.getLogger("core.analysis.facade")  # one logger name for the whole analysis, core and adapters


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
    orderflow_error: str | None = None
    feed_tick_time: float | None = None  # set by a live/paper feed: the candle freshness checks its age


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
    """Current values only (see `core.analysis.range.lastvalues`); VWAP is today's session, reset at 00:00 UTC."""
    ea = cfg.effective_atr
    a = atr_last(bars.high, bars.low, bars.close, ea.atr_period)
    mid, up, lo = bollinger_last(bars.close, ea.bb_period, ea.bb_std)
    r_prev, r = rsi_last(bars.close, ea.rsi_period, 2)
    day = math.floor((bars.time[-1]) / 86400.0) * 86400.0
    today = int(len(bars) - bars.time.searchsorted(day, side="left"))
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
def analysis_step_seconds(cfg: TradingConfig) -> int:
    """The length of the finest bar the analysis reads: its closed inputs change only once per step."""
    return min(Timeframe.parse(tf).seconds for tf in window_sizes(cfg))


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
                              orderflow=inputs.orderflow, higher_tf=higher,
                              orderflow_error=inputs.orderflow_error, feed_tick_time=inputs.feed_tick_time)

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
                scored = _SCORER.apply_dynamic_strategy_weights(scored, ctx.session_names, rng.expansion_state,
                                                                 cfg.strategy_weights)
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
        ctx.warnings.append(_no_setup_reason(rng, _last(bars.close) if len(bars) else float("nan"), spec.digits))
    return AnalysisResult(
        symbol=inputs.symbol, timeframe=tf, as_of=as_of, range=rng, no_range=no_range, filters=results,
        passed=passed, strategies=strategies, confidence=round(float(clip(confidence, 0, 100)), 2),
        warnings=ctx.warnings, config_version=config_version, data_timestamps=stamps, timings_ms=timings,
        session="+".join(ctx.session_names) or "off_hours", confluence_score=confluence,
    )


def _no_setup_reason(rng: RangeStructure, last: float, digits: int) -> str:
    """Why no strategy has a setup. Price outside the range is a breakout, not a wait for an edge: a trader
    told to wait for an edge of a range that has already broken would wait for a trade that never comes."""
    def p(x: float) -> str:
        return price_text(x, digits)

    atr = rng.atr if rng.atr and rng.atr > 0 else float("nan")
    for side, edge, beyond in (("up", rng.range_high, last - rng.range_high),
                               ("down", rng.range_low, rng.range_low - last)):
        if beyond > 0:
            size = f" ({beyond / atr:.1f} ATR)" if math.isfinite(atr) else ""
            where = "above the range high" if side == "up" else "below the range low"
            return (f"The range broke {side}: the last close {p(last)} is {p(beyond)}{size} {where} {p(edge)}. "
                    "No range trade until a new range forms.")
    return "No strategy has a setup at the current price: wait for price to reach an edge of the range."


def _detect(detector: RangeBoundaryDetector, cfg: TradingConfig, views: dict[str, Bars], atrs: dict[str, float],
            tf: str, as_of: float) -> tuple[RangeStructure | None, NoRange | None, tuple[float, float] | None, dict]:
    bars = views[tf]
    atr = atrs[tf]
    need = max(cfg.range_detection.min_candles, cfg.effective_atr.atr_period)
    if len(bars) < need:
        return None, detector._too_few(bars, need, "range"), None, {}
    if not (atr > 0):  # enough bars, but a frozen feed (every bar high == low): say so, not "too few"
        return None, NoRange(
            reason="no_movement",
            message=f"Price has not moved over the last {cfg.effective_atr.atr_period} {tf} candles "
            "(zero ATR): the feed looks frozen or the market is closed.",
            details={"have": len(bars), "atr": atr, "timeframe": tf},
        ), None, {}
    # candidates measured only (edges, width, touches: what the pick reads); the picked one alone is built
    dyn = detector.detect_candidate(bars, "dynamic", atr=atr, as_of=as_of)
    found: dict[str, RangeCandidate | NoRange] = {"dynamic": dyn}
    price = float(bars.close[-1])
    # a validated swing range around price is the pick whatever the others measure (it leads PREFERENCE, and
    # validated wins first): the session range is then not measured, and of the previous day only its edges
    # are read (the previous-day strategy's levels). Three calls in four in the backtest.
    settled = (isinstance(dyn, RangeCandidate) and dyn.validated
               and dyn.range_low - atr <= price <= dyn.range_high + atr)
    stf = _SESSION_TF.get(id(cfg))
    if stf is None or stf[0] is not cfg:
        stf = _SESSION_TF[id(cfg)] = (cfg, _session_tf(cfg, window_sizes(cfg)))
    stf = stf[1]
    if not settled and stf in views and atrs.get(stf, 0) > 0:
        found["session"] = detector.detect_candidate(views[stf], "session", atr=atrs[stf], as_of=as_of)
    prev_day = None
    if "H1" in views and atrs.get("H1", 0) > 0:
        if settled:
            edges = detector._previous_day_edges(views["H1"], as_of)
            if not isinstance(edges, NoRange):
                prev_day = (edges[0], edges[1])
        else:
            pd = detector.detect_candidate(views["H1"], "previous_day", atr=atrs["H1"], as_of=as_of,
                                           apply_width_limits=False)
            if isinstance(pd, RangeCandidate):
                prev_day = (pd.range_high, pd.range_low)
                found["previous_day"] = detector._width_failure(pd.range_type, pd.range_high, pd.range_low,
                                                                pd.range_width_pct) or pd
            else:
                found["previous_day"] = pd
    cands = [r for r in found.values() if isinstance(r, RangeCandidate)]
    if not cands:  # the higher-timeframe ranges are context for a range: without one nothing reads them
        first = found["dynamic"]
        others = {k: v.reason for k, v in found.items() if isinstance(v, NoRange)}
        return None, first.model_copy(update={"details": {**first.details, "by_type": others}}), prev_day, {}
    higher = detector.nested_ranges({k: (v, atrs[k]) for k, v in views.items()
                                     if k != tf and k in cfg.range_detection.nested_timeframes})
    inside = [r for r in cands if r.range_low - atr <= price <= r.range_high + atr]
    pool = inside or cands
    best = min(pool, key=lambda r: (not r.validated, PREFERENCE.index(r.range_type)))
    return best.build(nested=higher), None, prev_day, higher
