"""RangeScalpingScorer: turns setups into ranked, R:R-bounded `StrategyScore`s.

Score (0-100) = location (0-30) + the setup's own signal (0-30) + reward/risk (0-20) + range quality
(0-20), then multiplied by a session/regime weight. The components are kept on the result so a
trader can see *why* one setup outranks another. Targets never lie beyond the range's far edge (a
natural level past it is capped there), and the R:R of every viable result lies inside the
strategy's configured [min, max]: targets beyond max are pulled in, targets short of min are pushed
out only if the pushed target still lies inside the range (otherwise the setup is not viable).
"""
from __future__ import annotations

import math
from dataclasses import replace

from core.analysis.context import AnalysisContext
from core.analysis.scoring.strategies import STRATEGIES, Setup
from core.config.analysis import StrategyWeights
from core.domain.models import Direction, StrategyScore


def _clamp(x: float, lo: float = 0.0, hi: float = 100.0) -> float:
    return lo if x < lo else hi if x > hi else x


class RangeScalpingScorer:
    def __init__(self, strategies: dict | None = None):
        self.strategies = strategies or STRATEGIES

    def fit_rr(self, ctx: AnalysisContext, s: Setup) -> tuple[float, float, str]:
        """(take_profit, rr, problem): the natural target fitted into the configured R:R window."""
        rr_cfg = ctx.cfg.strategy_rr.get(s.strategy)
        sign = s.direction.sign
        risk = (s.entry - s.stop_loss) * sign
        # a fade's target is inside the box: a natural level past the far edge (VWAP or the band
        # middle after a one-way day) would aim through the opposite edge, which is where the
        # range fades the trade back; the far edge itself is as far as a range trade reaches
        far_edge = ctx.rng.range_high if s.direction is Direction.LONG else ctx.rng.range_low
        target = far_edge if (s.target - far_edge) * sign > 0 else s.target
        if risk <= 0:
            return target, 0.0, "the stop would be on the wrong side of the entry"
        rr = (target - s.entry) * sign / risk
        if rr <= 0:
            return target, rr, "price is already past the target"
        if rr_cfg is None:
            return target, rr, ""
        if rr > rr_cfg.max:
            return s.entry + sign * rr_cfg.max * risk, rr_cfg.max, ""
        if rr < rr_cfg.min:
            tp = s.entry + sign * rr_cfg.min * risk
            if (tp - far_edge) * sign <= 0:
                return tp, rr_cfg.min, ""
            return target, rr, f"the target is only {rr:.2f}× the risk and the range has no room for the {rr_cfg.min:g}× minimum"
        return target, rr, ""

    @staticmethod
    def round_setup(ctx: AnalysisContext, s: Setup) -> Setup:
        """Entry and stop on the symbol's price grid; the stop rounded *away* from the entry, so
        rounding never moves it back toward the range edge nor shrinks the risk."""
        d = ctx.spec.digits
        f = 10.0**d
        x = s.stop_loss * f
        sl = (math.floor(x + 1e-6) if s.direction is Direction.LONG else math.ceil(x - 1e-6)) / f
        if type(s) is not Setup:  # a subclass may carry more fields: replace() keeps them
            return replace(s, entry=round(s.entry, d), stop_loss=round(sl, d))
        # field by field: dataclasses.replace introspects the fields on every call
        return Setup(s.strategy, s.direction, round(s.entry, d), round(sl, d), s.target, s.signal, s.note)

    @staticmethod
    def round_target(ctx: AnalysisContext, s: Setup, tp: float, viable: bool) -> tuple[float, float]:
        """(take_profit, rr) on the price grid; a viable target is rounded toward the inside of the
        strategy's R:R window, so the R:R of the rounded prices still lies inside it."""
        d = ctx.spec.digits
        f = 10.0**d
        sign = s.direction.sign
        risk = (s.entry - s.stop_loss) * sign
        out = round(tp, d)
        if risk <= 0:
            return out, 0.0
        rr_cfg = ctx.cfg.strategy_rr.get(s.strategy)
        rr = (out - s.entry) * sign / risk
        if viable and rr_cfg is not None:
            toward, away = (math.floor, math.ceil) if sign > 0 else (math.ceil, math.floor)
            if rr > rr_cfg.max:
                out = round(toward(tp * f + 1e-6 * sign) / f, d)
            elif rr < rr_cfg.min:
                out = round(away(tp * f - 1e-6 * sign) / f, d)
            rr = (out - s.entry) * sign / risk
        return out, rr

    def _location_problem(self, ctx: AnalysisContext, s: Setup) -> str:
        """Entries are allowed only in the critical zone at the edge being faded (or, on the inside,
        within the edge threshold of the edge): a fade from mid-range has neither the edge's support
        nor room to the target, and one from beyond the zone fades a breakout already under way."""
        r = ctx.rng
        zone = r.critical_gaps.zone_of(s.entry)
        want = "upper" if s.direction is Direction.SHORT else "lower"
        if zone == want:
            return ""
        edge = r.range_high if want == "upper" else r.range_low
        dist = abs(s.entry - edge)
        g = r.critical_gaps
        if (s.entry > g.upper_zone_end) if want == "upper" else (s.entry < g.lower_zone_start):
            # beyond the invalidation buffer: fading from there is buying a breakdown (selling a breakout)
            where = "above the range top" if want == "upper" else "below the range bottom"
            return f"the entry is {dist / ctx.ind.atr:.1f} ATR {where}, beyond the entry zone: the range may be breaking"
        if dist <= ctx.cfg.entry_filters.price_edge_threshold_atr * ctx.ind.atr:
            return ""
        where = "top" if want == "upper" else "bottom"
        return f"the entry is {dist / ctx.ind.atr:.1f} ATR from the range {where}, outside the entry zone at the edge"

    def score_setup(self, ctx: AnalysisContext, s: Setup) -> StrategyScore:
        r = ctx.rng
        ef = ctx.cfg.entry_filters
        s = self.round_setup(ctx, s)
        tp, rr, problem = self.fit_rr(ctx, s)
        if not problem:
            problem = self._location_problem(ctx, s)
        tp, rr = self.round_target(ctx, s, tp, not problem)
        edge_dist = (r.range_high - s.entry) if s.direction is Direction.SHORT else (s.entry - r.range_low)
        # full marks at the edge, zero at the inner end of the entry zone (or the ATR threshold, if wider)
        band = (r.range_high - r.range_low) * ctx.cfg.range_detection.critical_zone_fraction
        thr = max(ef.price_edge_threshold_atr * ctx.ind.atr, band, 1e-12)
        location = 30.0 * _clamp(1.0 - max(edge_dist, 0.0) / thr, 0.0, 1.0)
        signal = 30.0 * s.signal
        rr_cfg = ctx.cfg.strategy_rr.get(s.strategy)
        if rr_cfg is not None and rr_cfg.target > rr_cfg.min:
            reward = 20.0 * _clamp((rr - rr_cfg.min) / (rr_cfg.target - rr_cfg.min) * 0.5 + 0.5, 0.0, 1.0) if rr > 0 else 0.0
        else:
            reward = 20.0 if rr > 0 else 0.0
        need = max(ctx.cfg.range_detection.min_touches_per_side, 1)
        tmin = min(r.touch_count.top, r.touch_count.bottom)
        quality = (10.0 if r.validated else 0.0) + 5.0 * min(1.0, tmin / (need + 1)) + (0.0 if r.expansion_state == "expanding" else 5.0)
        components = {"location": round(location, 2), "signal": round(signal, 2),
                      "reward_risk": round(reward, 2), "range_quality": round(quality, 2)}
        score = round(_clamp(location + signal + reward + quality), 2)
        viable = not problem
        reason = s.note if viable else f"{s.note} Not tradeable: {problem}."
        return StrategyScore(strategy=s.strategy, direction=s.direction, entry=s.entry, stop_loss=s.stop_loss,
                             take_profit=tp, rr=round(rr, 4), score=score, components=components,
                             viable=viable, reason=reason)

    def score_all_strategies(self, ctx: AnalysisContext) -> list[StrategyScore]:
        if ctx.rng is None:
            return []
        out = []
        for fn in self.strategies.values():
            setup = fn(ctx)
            if setup is not None:
                out.append(self.score_setup(ctx, setup))
        return out

    def apply_dynamic_strategy_weights(self, scores: list[StrategyScore], sessions: list[str], regime: str,
                                       weights: StrategyWeights) -> list[StrategyScore]:
        """Scale each score by the product of its session weights (overlaps multiply) and regime weight,
        as configured in `strategy_weights`.

        Why these defaults: Asian ranges are quiet and mean-revert cleanly (band/RSI fades); the London
        and New York opens run stops first (sweeps, day-level rejections); New York respects VWAP. In an
        expanding regime, fades of the band are the first casualties."""
        out = []
        names = sessions or ["off_hours"]
        for s in scores:
            w = 1.0
            for n in names:
                w *= weights.session.get(n, {}).get(s.strategy, 1.0)
            w *= weights.regime.get(regime, {}).get(s.strategy, 1.0)
            comps = dict(s.components, base_score=s.score)
            out.append(s.model_copy(update={"weight": round(w, 4), "score": round(_clamp(s.score * w), 2), "components": comps}))
        return out

    def apply_min_score(self, scores: list[StrategyScore], min_score: float) -> list[StrategyScore]:
        out = []
        for s in scores:
            if s.viable and s.score < min_score:
                s = s.model_copy(update={"viable": False,
                                         "reason": f"{s.reason} Score {s.score:.0f} is below the {min_score:g} minimum."})
            out.append(s)
        return out

    def check_strategy_conflicts(self, scores: list[StrategyScore]) -> tuple[list[StrategyScore], str | None]:
        """Never both sides: the best strategy (viable first, then score) sets the direction; the other
        side is dropped and the reason is returned."""
        if not scores:
            return [], None
        ranked = sorted(scores, key=lambda s: (not s.viable, -s.score, s.strategy))
        best = ranked[0]
        kept = [s for s in ranked if s.direction is best.direction]
        dropped = [s for s in ranked if s.direction is not best.direction]
        if not dropped:
            return kept, None
        other = dropped[0]
        note = (f"{other.strategy} wanted to go {other.direction.value} (score {other.score:.0f}) but "
                f"{best.strategy} says {best.direction.value} with a higher score ({best.score:.0f}); "
                f"I only keep the {best.direction.value} side.")
        return kept, note
