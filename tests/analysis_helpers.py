"""Shared set-up for the analysis-core tests (range, filters, scoring, orchestrator): real data, real config."""
from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from functools import cache, lru_cache

from core.analysis.facade import AnalysisInputs, analyse, candles_from_market_data
from core.config.loading import load_config, validate_config_dict
from core.config.model import AppConfig, deep_merge
from core.config.paths import DEFAULT_CONFIG_PATH
from core.data.catalog import MarketData

SYMBOLS = ("XAUUSDc", "EURUSDc", "BTCUSDc")


@lru_cache(maxsize=1)
def app() -> AppConfig:
    return load_config()


@lru_cache(maxsize=1)
def market() -> MarketData:
    return MarketData(app())


@cache
def candles(symbol: str) -> dict:
    return candles_from_market_data(market(), symbol, app())


def app_with(overrides: dict, symbol_overrides: dict | None = None) -> AppConfig:
    """The default config with `overrides` deep-merged into the defaults (and per-symbol ones), validated."""
    raw = json.loads(DEFAULT_CONFIG_PATH.read_text())
    raw = deep_merge(raw, overrides)
    if symbol_overrides:
        raw["symbol_overrides"] = deep_merge(copy.deepcopy(raw.get("symbol_overrides", {})), symbol_overrides)
    cfg, issues = validate_config_dict(raw)
    assert cfg is not None, issues
    return cfg


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def run(symbol: str, now: float, cfg: AppConfig | None = None, data: dict | None = None, **kw):
    """Analyse `symbol` as of `now` (epoch seconds) on the real data."""
    cfg = cfg or app()
    inputs = AnalysisInputs(symbol, data or candles(symbol), now, **kw)
    return analyse(inputs, cfg.for_symbol(symbol), cfg.symbols[symbol], cfg.short_version)


def bar_close(symbol: str, i: int, tf: str = "M5") -> float:
    """Close time of bar i of the real primary series: the 'now' of a replay at that bar."""
    from core.domain.timeframes import Timeframe

    return float(candles(symbol)[tf]["time"][i]) + Timeframe.parse(tf).seconds


def context_at(symbol: str, now: float, cfg: AppConfig | None = None, **kw):
    """The AnalysisContext the orchestrator builds (for exercising one filter or strategy at a time)."""
    import core.analysis.pipeline as an
    from core.analysis.context import AnalysisContext
    from core.analysis.range.bars import Bars
    from core.analysis.range.detector import RangeBoundaryDetector
    from core.domain.sessions import active_sessions

    cfg = cfg or app()
    tcfg = cfg.for_symbol(symbol)
    data = kw.pop("data", None) or candles(symbol)
    sizes = an.window_sizes(tcfg)
    views = {tf: Bars.closed_window(data[tf], tf, now, n) for tf, n in sizes.items() if tf in data}
    tf = tcfg.range_detection.timeframe
    ind = an._indicators(tcfg, views[tf])
    from core.analysis.range.lastvalues import atr_last

    atrs = {k: (ind.atr if k == tf else atr_last(v.high, v.low, v.close, tcfg.effective_atr.atr_period))
            for k, v in views.items()}
    det = RangeBoundaryDetector(tcfg, symbol)
    rng, no_range, prev_day, higher = an._detect(det, tcfg, views, atrs, tf, views[tf].last_close_time)
    ctx = AnalysisContext(symbol=symbol, cfg=tcfg, spec=cfg.symbols[symbol], now=now, bars=views[tf], ind=ind,
                          sessions=active_sessions(tcfg.sessions, now), rng=rng, no_range=no_range,
                          prev_day=prev_day, higher_tf=higher, **kw)
    return ctx, det, views


def views_at(symbol: str, now: float) -> dict:
    """The closed windows the analysis cuts at `now`, per timeframe (`pipeline.analyse`'s views)."""
    from core.analysis.pipeline import window_sizes
    from core.analysis.range.bars import Bars

    data = candles(symbol)
    return {tf: Bars.closed_window(data[tf], tf, now, n)
            for tf, n in window_sizes(app().for_symbol(symbol)).items() if tf in data}


def bars_with(bars, **cols):
    """`bars` with some columns replaced (an edge case cut from real bars)."""
    from core.analysis.range.bars import Bars

    f = {k: getattr(bars, k) for k in ("time", "open", "high", "low", "close", "volume", "spread")}
    f.update(cols)
    return Bars(bars.timeframe, bars.seconds, **f)
