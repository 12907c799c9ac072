"""Data-quality gate: is each input fresh enough to trade on, and if not, which fallback applies?

Ages are measured against the injected clock (`ctx.now`), never the wall clock, so a replay judges
freshness exactly as the live bot would have at that moment. Candles are the only source whose
failure blocks by default; VWAP, order flow and the news calendar degrade gracefully to the
fallback named in `data_quality` and leave a warning the trader sees.
"""
from __future__ import annotations

from datetime import UTC, datetime

from core.analysis.context import AnalysisContext
from core.config.market import SourceQuality
from core.domain.models import FilterResult

_DISPLAY = {"candles": "Candles", "vwap": "VWAP", "orderflow": "Order flow", "news_calendar": "News calendar"}
_FALLBACK_SHORT = {
    "use_session_vwap": "VWAP from the range window",
    "skip_confirmation": "no order-flow confirmation",
    "skip_news_check": "no news check",
    "skip_check": "a check skipped",
}
_FALLBACK_TEXT = {
    "use_session_vwap": "using the VWAP of the whole range window instead",
    "skip_confirmation": "trading without order-flow confirmation",
    "skip_news_check": "the news blackout is not checked",
    "skip_check": "this check is skipped",
}


def _source(name: str, ok: bool, age_min: float | None, q: SourceQuality, problem: str) -> dict:
    return {
        "name": name,
        "available": ok,
        "age_minutes": None if age_min is None else round(age_min, 2),
        "max_age_minutes": q.max_age_minutes,
        "required": q.required,
        "fallback": None if ok else q.fallback,
        "problem": "" if ok else problem,
    }


def _hhmm(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M UTC")


def candle_report(ctx: AnalysisContext) -> dict:
    """The seed's candle freshness, without its bug: the feed's last tick is at most `max_age_minutes` old
    (when a feed is known; a historical replay has no tick), and the last *closed* bar is the newest that
    should exist by now. The seed read the open time of the bar still forming, which is up to a whole bar
    old by construction and never says whether a closed bar went missing."""
    q = ctx.cfg.data_quality.mt5_candles
    n = len(ctx.bars)
    need = q.min_candles or 1
    last = ctx.bars.last_close_time
    if last is None:
        return _source("candles", False, None, q, f"no closed {ctx.bars.timeframe} candles at all")
    tick_age = None if ctx.feed_tick_time is None else (ctx.now - ctx.feed_tick_time) / 60.0
    age = tick_age if tick_age is not None else (ctx.now - last) / 60.0
    if n < need:
        return _source("candles", False, age, q, f"only {n} closed {ctx.bars.timeframe} candles (need {need})")
    if tick_age is not None and tick_age > q.max_age_minutes:
        return _source("candles", False, age, q, f"the feed's last tick is {tick_age:.0f} minutes old")
    # the bar after the last one closes at last + one bar: if that time has come, it should be there (this
    # needs no assumption about how the broker aligns its bars to UTC)
    following = last + ctx.bars.seconds
    if ctx.now >= following:
        ago = (ctx.now - last) / 60.0
        return _source("candles", False, age, q, f"the last {ctx.bars.timeframe} candle closed at {_hhmm(last)} "
                       f"({ago:.0f} minutes ago): the one closing at {_hhmm(following)} is missing")
    return _source("candles", True, age, q, "")


def vwap_report(ctx: AnalysisContext) -> dict:
    q = ctx.cfg.data_quality.vwap
    t = ctx.ind.vwap_time
    if t is None or ctx.ind.vwap != ctx.ind.vwap:  # NaN check without numpy
        return _source("vwap", False, None, q, "no VWAP for today's session yet")
    age = (ctx.now - t) / 60.0
    if ctx.ind.vwap_bars < 3:
        return _source("vwap", False, age, q, f"today's VWAP has only {ctx.ind.vwap_bars} bars")
    if age > q.max_age_minutes:
        return _source("vwap", False, age, q, f"the VWAP was last updated {age:.0f} minutes ago")
    return _source("vwap", True, age, q, "")


def orderflow_report(ctx: AnalysisContext) -> dict:
    q = ctx.cfg.data_quality.orderflow
    of = ctx.orderflow
    if of is None:
        out = _source("orderflow", False, None, q, ctx.orderflow_error or "no order-flow feed for this symbol")
        out["source"] = None
        return out
    age = (ctx.now - of.timestamp) / 60.0
    if age < 0:
        out = _source("orderflow", False, age, q, "the order-flow snapshot is from after the analysis time")
    elif age > q.max_age_minutes:
        out = _source("orderflow", False, age, q, f"the last trade print is {age:.0f} minutes old")
    else:
        out = _source("orderflow", True, age, q, "")
    out["source"] = of.source
    out["kind"] = of.kind
    return out


def news_report(ctx: AnalysisContext) -> dict:
    q = ctx.cfg.data_quality.news_calendar
    cal = ctx.news
    if not ctx.cfg.news.enabled:
        return _source("news_calendar", True, None, q, "")
    if cal is None:
        return _source("news_calendar", False, None, q, ctx.news_error or "no news calendar loaded")
    if not cal.covers(ctx.now):
        return _source("news_calendar", False, None, q, "the calendar does not cover this date")
    age = max(0.0, (ctx.now - cal.fetched_at) / 60.0) if cal.fetched_at is not None else 0.0
    if age > q.max_age_minutes:
        when = f"{age / 1440:.0f} days" if age >= 2880 else f"{age / 60:.0f} hours" if age >= 120 else f"{age:.0f} minutes"
        out = _source("news_calendar", False, age, q, f"the calendar was downloaded {when} ago")
    else:
        out = _source("news_calendar", True, age, q, "")
    out["source"] = cal.source
    return out


def check_data_quality(ctx: AnalysisContext) -> FilterResult:
    """Runs every source check, records the fallbacks in `ctx.fallbacks` and warnings in `ctx.warnings`."""
    reports = [candle_report(ctx), vwap_report(ctx), orderflow_report(ctx), news_report(ctx)]
    blockers = []
    for r in reports:
        if r["available"]:
            continue
        if r["fallback"] == "BLOCK_TRADE":
            blockers.append(r)
        else:
            ctx.fallbacks[r["name"]] = r["fallback"]
            # an absent order-flow feed is the normal case on MT5 CFDs: only a stale or failing one is worth a
            # warning (a feed that is configured but failed says why in `orderflow_error`)
            if r["name"] != "orderflow" or ctx.orderflow is not None or ctx.orderflow_error:
                ctx.warnings.append(
                    f"{_DISPLAY[r['name']]}: {r['problem']}; {_FALLBACK_TEXT.get(r['fallback'], r['fallback'])}."
                )
    if ctx.orderflow is not None and ctx.orderflow_error and "orderflow" not in ctx.fallbacks:
        # the feed is failing but its last snapshot is still within the data_source_unavailable policy: say so
        ctx.warnings.append(f"Order flow: {ctx.orderflow_error}.")
    details = {r["name"]: r for r in reports}
    if blockers:
        problems = "; ".join(r["problem"] for r in blockers)
        return FilterResult(
            name="data_quality", passed=False,
            reason=f"The market data is not fresh enough to trade on: {problems}.", details=details,
        )
    used = [_FALLBACK_SHORT.get(v, v.replace("_", " ")) for v in ctx.fallbacks.values()]
    reason = "All data is fresh." if not used else "Candles are fresh; running with fallbacks: " + ", ".join(used) + "."
    return FilterResult(name="data_quality", passed=True, reason=reason, details=details)
