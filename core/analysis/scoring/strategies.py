"""The range-scalping setups. Each one looks at the last closed bar and the range, and either finds a
trade (direction, entry, stop beyond the edge, target inside the box) or returns None.

All setups are fades of a range edge, so their stop sits beyond the edge by the touch tolerance
plus the invalidation buffer: if price gets there, the range is wrong, which is exactly the thesis
that failed. Targets are natural levels (band middle, VWAP, range middle), then fitted into the
strategy's configured R:R window by the scorer.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.analysis.context import AnalysisContext
from core.domain.models import Direction


@dataclass(frozen=True)
class Setup:
    strategy: str
    direction: Direction
    entry: float
    stop_loss: float
    target: float  # natural target, before R:R fitting
    signal: float  # 0..1 strength of the strategy's own trigger
    note: str


def _edge(ctx: AnalysisContext) -> str | None:
    """Which edge price is at ('upper'/'lower'), judged by the critical zones or the ATR threshold."""
    r = ctx.rng
    price = ctx.price
    zone = r.critical_gaps.zone_of(price)
    if zone is not None:
        return zone
    thr = ctx.cfg.entry_filters.price_edge_threshold_atr * ctx.ind.atr
    if r.range_high - thr <= price <= r.range_high + thr:
        return "upper"
    if r.range_low - thr <= price <= r.range_low + thr:
        return "lower"
    return None


def stop_buffer(ctx: AnalysisContext) -> float:
    return (ctx.cfg.range_detection.touch_tolerance_atr + ctx.cfg.range_invalidation.outside_buffer_atr) * ctx.ind.atr


def _clip01(x: float) -> float:
    return 0.0 if x < 0 else 1.0 if x > 1 else x


def _last(ctx: AnalysisContext) -> tuple[float, float, float, float]:
    b = ctx.bars
    return float(b.open[-1]), float(b.high[-1]), float(b.low[-1]), float(b.close[-1])


def _fade(ctx, name: str, edge: str, target: float, signal: float, note: str, extreme: float | None = None) -> Setup:
    r = ctx.rng
    buf = stop_buffer(ctx)
    _, h, lo, _ = _last(ctx)
    if edge == "upper":
        sl = max(r.range_high, h if extreme is None else extreme) + buf
        return Setup(name, Direction.SHORT, ctx.entry_price(long=False), sl, target, _clip01(signal), note)
    sl = min(r.range_low, lo if extreme is None else extreme) - buf
    return Setup(name, Direction.LONG, ctx.entry_price(long=True), sl, target, _clip01(signal), note)


def bb_fade(ctx: AnalysisContext) -> Setup | None:
    """The last bar pierced the Bollinger band at a range edge: fade it back to the band middle."""
    edge = _edge(ctx)
    i = ctx.ind
    if edge is None or i.bb_upper != i.bb_upper:
        return None
    _, h, lo, c = _last(ctx)
    width = max(i.bb_upper - i.bb_lower, 1e-12)
    if edge == "upper" and h >= i.bb_upper:
        return _fade(ctx, "bb_fade", edge, i.bb_mid, 0.5 + (h - i.bb_upper) / width * 4 + (0.2 if c < i.bb_upper else 0),
                     "The last candle pierced the upper Bollinger band at the range top.")
    if edge == "lower" and lo <= i.bb_lower:
        return _fade(ctx, "bb_fade", edge, i.bb_mid, 0.5 + (i.bb_lower - lo) / width * 4 + (0.2 if c > i.bb_lower else 0),
                     "The last candle pierced the lower Bollinger band at the range bottom.")
    return None


def rsi_bounce(ctx: AnalysisContext) -> Setup | None:
    """RSI stretched at an edge (this bar or the one before): fade back toward the range middle."""
    edge = _edge(ctx)
    ef = ctx.cfg.entry_filters
    rsi, prev = ctx.ind.rsi, ctx.ind.rsi_prev
    if edge is None or rsi != rsi:
        return None
    peak = max(rsi, prev) if prev == prev else rsi
    trough = min(rsi, prev) if prev == prev else rsi
    mid = ctx.rng.range_mid
    if edge == "upper" and peak >= ef.rsi_overbought:
        turning = 0.2 if prev == prev and rsi < prev else 0.0
        return _fade(ctx, "rsi_bounce", edge, mid, 0.4 + (peak - ef.rsi_overbought) / max(100 - ef.rsi_overbought, 1e-9) + turning,
                     f"RSI reached {peak:.0f} (overbought) at the range top.")
    if edge == "lower" and trough <= ef.rsi_oversold:
        turning = 0.2 if prev == prev and rsi > prev else 0.0
        return _fade(ctx, "rsi_bounce", edge, mid, 0.4 + (ef.rsi_oversold - trough) / max(ef.rsi_oversold, 1e-9) + turning,
                     f"RSI fell to {trough:.0f} (oversold) at the range bottom.")
    return None


def vwap_reversion(ctx: AnalysisContext) -> Setup | None:
    """Price stretched away from VWAP at an edge: revert to VWAP (session fallback when stale)."""
    edge = _edge(ctx)
    i = ctx.ind
    if edge is None or i.vwap != i.vwap:
        return None
    price = ctx.price
    atr = ctx.ind.atr
    dist = price - i.vwap
    sig = i.vwap_sigma if i.vwap_sigma > 0 else atr
    if edge == "upper" and dist > 0.5 * atr:
        return _fade(ctx, "vwap_reversion", edge, i.vwap, 0.3 + 0.35 * dist / sig,
                     f"Price is {dist / atr:.1f} ATR above VWAP at the range top.")
    if edge == "lower" and -dist > 0.5 * atr:
        return _fade(ctx, "vwap_reversion", edge, i.vwap, 0.3 + 0.35 * (-dist) / sig,
                     f"Price is {-dist / atr:.1f} ATR below VWAP at the range bottom.")
    return None


def pdh_pdl_rejection(ctx: AnalysisContext) -> Setup | None:
    """The last bar tested the previous day's high (low) and closed back below (above) with a wick."""
    if ctx.prev_day is None:
        return None
    pdh, pdl = ctx.prev_day
    o, h, lo, c = _last(ctx)
    atr = ctx.ind.atr
    thr = ctx.cfg.entry_filters.price_edge_threshold_atr * atr
    span = max(h - lo, 1e-12)
    mid = ctx.rng.range_mid
    upper_wick = (h - max(o, c)) / span
    lower_wick = (min(o, c) - lo) / span
    if abs(h - pdh) <= thr and c < pdh and upper_wick >= 0.3 and mid < c:
        return _fade(ctx, "pdh_pdl_rejection", "upper", mid, 0.3 + upper_wick, "Rejected at the previous day's high.",
                     extreme=max(h, pdh))
    if abs(lo - pdl) <= thr and c > pdl and lower_wick >= 0.3 and mid > c:
        return _fade(ctx, "pdh_pdl_rejection", "lower", mid, 0.3 + lower_wick, "Rejected at the previous day's low.",
                     extreme=min(lo, pdl))
    return None


def liquidity_sweep(ctx: AnalysisContext) -> Setup | None:
    """A wick ran the stops beyond an edge and the bar closed back inside: trade back into the box."""
    r = ctx.rng
    o, h, lo, c = _last(ctx)
    atr = ctx.ind.atr
    poke = 0.05 * atr
    mid = r.range_mid
    if lo < r.range_low - poke and r.range_low < c < mid:
        depth = (r.range_low - lo) / atr
        return _fade(ctx, "liquidity_sweep", "lower", mid, 0.4 + depth, "Stops below the range bottom were swept and price closed back inside.",
                     extreme=lo)
    if h > r.range_high + poke and mid < c < r.range_high:
        depth = (h - r.range_high) / atr
        return _fade(ctx, "liquidity_sweep", "upper", mid, 0.4 + depth, "Stops above the range top were swept and price closed back inside.",
                     extreme=h)
    return None


STRATEGIES = {
    "vwap_reversion": vwap_reversion,
    "bb_fade": bb_fade,
    "pdh_pdl_rejection": pdh_pdl_rejection,
    "rsi_bounce": rsi_bounce,
    "liquidity_sweep": liquidity_sweep,
}
