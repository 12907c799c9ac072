"""RangeScalpingRiskFilters: the reasons *not* to take a range scalp right now.

Each check returns a `FilterResult` whose `reason` is written for the trader (it is shown verbatim on
the trade card), with the numbers behind it in `details` for logs and tests. Checks are independent
and cheap, so `evaluate_all` always runs all of them: the trader sees every problem at once,
not just the first.
"""
from __future__ import annotations

import functools
from datetime import UTC, datetime

import numpy as np

from core.analysis.context import AnalysisContext
from core.analysis.filters.data_quality import check_data_quality
from core.analysis.range.lastvalues import clip, mean_of
from core.data.sources.news import symbol_currencies
from core.domain.models import FilterResult

_RANGE_NAMES = {"dynamic": "swing range", "session": "session range", "previous_day": "previous day's range"}


_SUM = np.add.reduce


@functools.lru_cache(maxsize=16)
def _centred(n: int) -> tuple[np.ndarray, np.float64]:
    """Bar positions centred on the window's middle, and their dot with themselves, for the trend slope."""
    x = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    x.flags.writeable = False
    return x, np.dot(x, x)


def _title(name: str) -> str:
    return {"new_york": "New York"}.get(name, name.replace("_", " ").title())


def session_refusal(symbol: str, s, trades_weekends: bool, now: float, windows) -> tuple[bool, str] | None:
    """(weekend?, why) when the session rule refuses an entry at `now`, None when it lets it through.

    `s` is the symbol's session config, `windows` the session windows open at `now` (`active_sessions`).
    The verdict and reason of `check_session_filters`, without its result model, context or pass reason:
    the send-time check (`core.trading.order_checks.session_block_now`) needs only the refusal."""
    if not trades_weekends and datetime.fromtimestamp(now, UTC).weekday() >= 5:
        return True, f"It is the weekend: the {symbol} market is closed."
    for w in windows:
        block = s.block_open_minutes.get(w.name, 0)
        since = (now - w.start) / 60.0
        if block and since < block:
            return False, (f"{_title(w.name)} opened {since:.0f} minutes ago; I wait {block} minutes after the open "
                           "for the opening spike to settle.")
    if s.allow_outside_sessions or any(w.name in s.allowed for w in windows):
        return None
    listed = ", ".join(_title(n) for n in s.allowed)
    return False, (f"None of the sessions I trade ({listed}) is open right now; ranges outside them are thin and "
                   "unreliable.")


class RangeScalpingRiskFilters:
    """Stateless: one instance can serve every symbol (the per-symbol config travels in the context)."""

    # -- data ---------------------------------------------------------------------------------------
    def check_data_quality(self, ctx: AnalysisContext) -> FilterResult:
        return check_data_quality(ctx)

    # -- structure ----------------------------------------------------------------------------------
    def check_range_validity(self, ctx: AnalysisContext, detector) -> FilterResult:
        if ctx.rng is None:
            nr = ctx.no_range
            msg = nr.message if nr else "No range was found."
            return FilterResult(name="range_validity", passed=False, reason=msg,
                                details={"no_range": nr.reason if nr else "unknown"})
        ok, reasons = detector.validate_range_integrity(ctx.rng)
        r = ctx.rng
        details = {"touches_top": r.touch_count.top, "touches_bottom": r.touch_count.bottom,
                   "expansion_state": r.expansion_state, "range_type": r.range_type}
        if not ok:
            return FilterResult(name="range_validity", passed=False, reason=" ".join(reasons), details=details)
        return FilterResult(
            name="range_validity", passed=True, details=details,
            reason=f"The {_RANGE_NAMES[r.range_type]} was tested {r.touch_count.top}× at the top and "
            f"{r.touch_count.bottom}× at the bottom and is intact.",
        )

    def detect_false_range(self, ctx: AnalysisContext) -> FilterResult:
        """A box drawn around a trend, a one-sided volume push, or repeated closes through an edge."""
        if ctx.rng is None:
            return FilterResult(name="false_range", passed=False, reason="There is no range to check.")
        fr = ctx.cfg.false_range
        r = ctx.rng
        atr = ctx.ind.atr
        bars = ctx.bars
        # the lookback's columns sliced directly: only three are read, a `tail` window would slice all eight
        start = bars.tail_start(ctx.cfg.range_detection.lookback_bars)
        n = len(bars) - start
        close, opens, volume = bars.close[start:], bars.open[start:], bars.volume[start:]
        flags: list[str] = []
        details: dict = {}
        # 1. trend inside the box: least-squares slope of closes, in ATR per bar
        if n >= 3 and atr > 0:
            x, xx = _centred(n)
            slope = float(np.dot(x, close - mean_of(close)) / xx) / atr
            details["trend_slope_atr_per_bar"] = round(slope, 4)
            if abs(slope) > fr.max_trend_slope_atr:
                way = "up" if slope > 0 else "down"
                hours = n * bars.seconds / 3600
                flags.append(
                    f"Price has been drifting {way} by {abs(slope):.2f} ATR per candle over {hours:.0f} hours: "
                    "that is a trend inside the box, not a range."
                )
        # 2. one-sided volume: up-candle vs down-candle tick volume
        up = float(_SUM(volume[close > opens]))  # ndarray.sum's own reduction, without its wrapper
        down = float(_SUM(volume[close < opens]))
        if up + down > 0:
            imb = (up - down) / (up + down)
            details["volume_imbalance"] = round(imb, 4)
            if abs(imb) > fr.max_volume_imbalance:
                side = "rising" if imb > 0 else "falling"
                flags.append(f"{abs(imb) * 100:.0f}% of the volume traded on {side} candles: one side is in control.")
        # 3. repeated closes beyond the edges in the last hour
        hour = bars.tail_start(max(1, int(3600 // bars.seconds)))
        buf = ctx.cfg.range_invalidation.outside_buffer_atr * atr
        above, below = r.range_high + buf, r.range_low - buf
        # an hour of closes (12 on M5): Python compares a handful faster than numpy's masks and count
        beyond = sum(1 for c in bars.close[hour:].tolist() if c > above or c < below)
        details["closes_beyond_edges_last_hour"] = beyond
        if beyond >= fr.max_closes_beyond_edges and beyond > 0:
            flags.append(
                f"Price has closed outside the range {beyond} times in the last hour — this looks like a breakout, not a range."
            )
        if flags:
            return FilterResult(name="false_range", passed=False, reason=" ".join(flags), details=details)
        return FilterResult(name="false_range", passed=True, details=details,
                            reason="No trend, volume push or breakout closes inside the range.")

    # -- confluence ---------------------------------------------------------------------------------
    def check_3_confluence_rule_weighted(self, ctx: AnalysisContext) -> tuple[FilterResult, float, dict[str, float]]:
        """Structure, location and confirmation, each 0-100, blended with the configured weights."""
        cf = ctx.cfg.confluence
        if ctx.rng is None:
            fr = FilterResult(name="confluence", passed=False, reason="There is no range, so there is no confluence.")
            return fr, 0.0, {}
        r = ctx.rng
        ef = ctx.cfg.entry_filters
        atr = ctx.ind.atr if ctx.ind.atr > 0 else 1e-12
        price = ctx.price
        # structure: tested edges, validated, aligned with a higher-timeframe range, calm volatility
        need = ctx.cfg.range_detection.min_touches_per_side
        tmin = min(r.touch_count.top, r.touch_count.bottom)
        structure = 40.0 * min(1.0, tmin / max(need, 1)) + (20.0 if r.validated else 0.0)
        structure += {"contracting": 20.0, "stable": 20.0, "expanding": 0.0}[r.expansion_state]
        htf = ctx.higher_tf.get("H1") or next(iter(ctx.higher_tf.values()), None)
        if htf is not None and htf.range_low <= price <= htf.range_high:
            structure += 20.0
        # location: distance to the nearest edge, in units of the edge threshold
        upper = price >= r.range_mid
        dist = (r.range_high - price) if upper else (price - r.range_low)
        location = 100.0 * float(clip(1.0 - max(dist, 0.0) / (ef.price_edge_threshold_atr * atr * 2.0), 0.0, 1.0))
        if r.critical_gaps.zone_of(price) is not None:
            location = max(location, 70.0)
        # confirmation: RSI stretched toward the edge, a rejection wick, and order flow when available
        rsi = ctx.ind.rsi
        conf = 0.0
        if rsi == rsi:
            # thresholds at 50 are valid config: guard the span, a stretch past them is simply full
            stretch = ((rsi - 50.0) / max(ef.rsi_overbought - 50.0, 1e-9) if upper
                       else (50.0 - rsi) / max(50.0 - ef.rsi_oversold, 1e-9))
            conf += 45.0 * float(clip(stretch, 0.0, 1.0))
        o, h, lo, c = (float(ctx.bars.open[-1]), float(ctx.bars.high[-1]), float(ctx.bars.low[-1]), float(ctx.bars.close[-1]))
        span = max(h - lo, 1e-12)
        wick = (h - max(o, c)) / span if upper else (min(o, c) - lo) / span
        conf += 30.0 * float(clip(wick / 0.5, 0.0, 1.0))
        flow = None
        if "orderflow" not in ctx.fallbacks and ctx.orderflow is not None:
            # recent taker imbalance, large prints and the book top (see OrderFlowSnapshot.against): a fade of
            # the top is confirmed when aggressive buying dries up, of the bottom when selling does
            of = ctx.orderflow
            against = of.against(upper)
            conf += 25.0 * float(clip(0.5 + against, 0.0, 1.0))
            flow = {"source": of.source, "kind": of.kind, "against": round(against, 3),
                    "confirms": of.fade_confirmed(upper)}
        else:
            conf *= 100.0 / 75.0  # without order flow, candle evidence carries the whole component
        components = {"structure": round(min(structure, 100.0), 2), "location": round(location, 2),
                      "confirmation": round(min(conf, 100.0), 2)}
        wsum = sum(cf.weights.values())
        score = sum(components.get(k, 0.0) * w for k, w in cf.weights.items()) / wsum
        score = round(float(clip(score, 0.0, 100.0)), 2)
        minimum = max(cf.min_score, ef.min_confluence_score)
        if score >= minimum:
            reason = f"Confluence {score:.0f}/100 (structure {components['structure']:.0f}, location {components['location']:.0f}, confirmation {components['confirmation']:.0f})."
            fr = FilterResult(name="confluence", passed=True, reason=reason, details={"score": score, **components})
            if flow is not None:
                fr.details["orderflow"] = flow
        else:
            weakest = min(components, key=components.get)
            hint = {"structure": "the range itself is not well established",
                    "location": "price is not near an edge of the range",
                    "confirmation": "nothing confirms a turn at the edge yet"}.get(weakest, weakest)
            reason = f"Confluence is {score:.0f}/100, below the {minimum:g} needed: {hint}."
            fr = FilterResult(name="confluence", passed=False, reason=reason, details={"score": score, **components})
            if flow is not None:
                fr.details["orderflow"] = flow
        return fr, score, components

    # -- time ---------------------------------------------------------------------------------------
    def check_session_filters(self, ctx: AnalysisContext) -> FilterResult:
        s = ctx.cfg.sessions
        refusal = session_refusal(ctx.symbol, s, ctx.spec.trades_weekends, ctx.now, ctx.sessions)
        if refusal is not None and refusal[0]:  # the weekend: said without the sessions
            return FilterResult(name="session", passed=False, reason=refusal[1])
        names = ctx.session_names
        details = {"active": names}
        if refusal is not None:
            return FilterResult(name="session", passed=False, details=details, reason=refusal[1])
        allowed = [n for n in names if n in s.allowed]
        if allowed:
            return FilterResult(name="session", passed=True, details=details,
                                reason=f"{' and '.join(_title(n) for n in allowed)} session open.")
        return FilterResult(name="session", passed=True, details=details,
                            reason=f"No main session is open, but {ctx.symbol} is allowed to trade outside sessions.")

    def check_news_blackout(self, ctx: AnalysisContext) -> FilterResult:
        nc = ctx.cfg.news
        if not nc.enabled:
            return FilterResult(name="news", passed=True, blocking=False, reason="The news blackout is switched off.")
        fb = ctx.fallbacks.get("news_calendar")
        if fb is not None or ctx.news is None:
            if fb == "BLOCK_TRADE":
                return FilterResult(name="news", passed=False, reason="The news calendar is unavailable, and the config blocks trading without it.")
            return FilterResult(name="news", passed=True, blocking=False, details={"fallback": fb or "skip_news_check"},
                                reason="News not checked: the calendar is unavailable or out of date.")
        cur = symbol_currencies(ctx.symbol, ctx.spec.currencies)
        events = ctx.news.between(ctx.now - nc.blackout_minutes_after * 60, ctx.now + nc.blackout_minutes_before * 60,
                                  currencies=cur, impacts=nc.impacts)
        if events:
            e = events[0]
            mins = (e.time - ctx.now) / 60.0
            when = f"is due in {mins:.0f} minutes" if mins >= 0 else f"came out {-mins:.0f} minutes ago"
            return FilterResult(
                name="news", passed=False, details={"event": e.title, "currency": e.currency, "time": e.time, "impact": e.impact},
                reason=f"{e.impact}-impact {e.currency} news '{e.title}' {when}; no new range trades "
                f"{nc.blackout_minutes_before} minutes before to {nc.blackout_minutes_after} minutes after it.",
            )
        return FilterResult(name="news", passed=True, reason="No high-impact news nearby.",
                            details={"currencies": cur})

    # -- activity -----------------------------------------------------------------------------------
    def check_trade_activity_criteria(self, ctx: AnalysisContext) -> FilterResult:
        a = ctx.cfg.activity
        atr = ctx.ind.atr
        price = ctx.price
        problems: list[str] = []
        if len(ctx.bars) == 0 or atr != atr or not (price > 0):
            return FilterResult(name="activity", passed=False, details={},
                                reason="There are not enough candles yet to measure volatility, volume and spread.")
        if not (atr > 0):
            return FilterResult(name="activity", passed=False, details={"atr_pct": 0.0},
                                reason="Not enough activity to scalp: price has not moved at all (zero ATR).")
        atr_pct = atr / price * 100.0
        recent = ctx.bars.volume[-3:]
        vol = mean_of(recent) if len(recent) else 0.0
        spread = ctx.spread
        ratio = spread / atr if atr > 0 else float("inf")
        details = {"atr_pct": round(atr_pct, 5), "tick_volume": round(vol, 1), "spread": spread, "spread_atr_ratio": round(ratio, 4)}
        if atr_pct < a.min_atr_pct:
            problems.append(f"the market is too quiet (ATR {atr_pct:.3f}% of price, minimum {a.min_atr_pct:g}%)")
        if vol < a.min_tick_volume:
            problems.append(f"too few ticks ({vol:.0f} per candle recently, minimum {a.min_tick_volume:g})")
        if ratio > a.max_spread_atr_ratio:
            problems.append(f"the spread is {ratio:.2f}× the ATR (maximum {a.max_spread_atr_ratio:g}×), so costs would eat the edge")
        if problems:
            return FilterResult(name="activity", passed=False, details=details,
                                reason="Not enough activity to scalp: " + "; ".join(problems) + ".")
        return FilterResult(name="activity", passed=True, details=details, reason="Volatility, tick volume and spread are fine.")

    # -- all ------------------------------------------------------------------------------------------
    def evaluate_all(self, ctx: AnalysisContext, detector, data_quality: FilterResult | None = None
                     ) -> tuple[list[FilterResult], float, dict[str, float]]:
        """Every check in the seed's order; data quality first because it sets the fallbacks the
        others read (pass it in when the caller already ran it to apply a fallback in between)."""
        dq = data_quality if data_quality is not None else self.check_data_quality(ctx)
        results = [dq, self.check_session_filters(ctx), self.check_news_blackout(ctx),
                   self.check_trade_activity_criteria(ctx), self.check_range_validity(ctx, detector)]
        if ctx.rng is not None:
            results.append(self.detect_false_range(ctx))
        conf, score, comps = self.check_3_confluence_rule_weighted(ctx)
        if ctx.rng is not None:
            results.append(conf)
        return results, score, comps
