"""The exit rules of a range scalp, as pure functions of (trade, prices, candles, config, time).

Kept free of state and I/O so the monitor can evaluate 200 trades in a few milliseconds, and so that a
backtest and the live loop reach the same decision from the same bars. `RangeScalpingExitManager`
(core/exits.py) owns the state; these functions only judge.
"""
from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from core.brokers.base import Tick
from core.domain.models import ActiveTrade, Direction, ExitPriority, ExitSignal
from core.domain.wording import price_text
from core.ops.alert_texts import r_text

STALL_MAX_MFE_R = 0.5  # a trade that never got half a R in its favour by stall time has no edge left
STALL_BAND_R = 0.25  # ...and is still within a quarter R of entry
# a pause in quotes this long is the market closed (weekend, holiday), not a quiet market; the daily
# one-hour break of metals/FX stays market time, as it does in every backtest of these rules
CLOSED_GAP_SECONDS = 2 * 3600.0


def _fmt(price: float, digits: int | None = None) -> str:
    """At the symbol's digits when known, like every other price the trader sees (core.domain.wording)."""
    if digits is not None:
        return price_text(price, digits)
    return f"{price:.5f}".rstrip("0").rstrip(".") if abs(price) < 10 else f"{price:.2f}"


def _hhmm(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M UTC")


def exit_price_of(trade: ActiveTrade, tick: Tick) -> float:
    """The price a close would get now: bid for a long, ask for a short."""
    return tick.bid if trade.direction is Direction.LONG else tick.ask


def bars_since_entry(trade: ActiveTrade, candles: np.ndarray, timeframe_seconds: int) -> np.ndarray:
    """Closed bars that *opened* at or after the bar containing the entry (the entry bar's own close counts)."""
    if len(candles) == 0:
        return candles
    first = trade.entry_time - (trade.entry_time % timeframe_seconds) if timeframe_seconds else trade.entry_time
    # bars are time-sorted: a binary search and a view, not a mask over every bar (the monitor's hot path)
    return candles[int(candles["time"].searchsorted(first, "left")):]


def market_minutes(trade: ActiveTrade, candles: np.ndarray, tick_time: float, now: float,
                   timeframe_seconds: int, bars: np.ndarray | None = None) -> float:
    """Minutes since the entry during which the market was open: the time limits of a scalp.

    Wall-clock minutes ran on over a weekend, so a trade opened on Friday evening was "open 3000
    minutes" or "stalled" at Monday's first price without having had its time. A gap of at least
    `CLOSED_GAP_SECONDS` between bars, from the last bar to the quote, or from the quote to now (the
    weekend's quote is Friday's last) is closed time. Time before the fetched window counts as open.
    `bars`: `bars_since_entry(trade, candles, timeframe_seconds)` when the caller has it already."""
    elapsed = max(now - trade.entry_time, 0.0)
    tf = timeframe_seconds
    if tf <= 0 or len(candles) == 0:
        return elapsed / 60.0
    if bars is None:
        bars = bars_since_entry(trade, candles, tf)
    # plain floats, not numpy: a handful of bars, and the same IEEE sums numpy's float64 arrays made
    times = [float(x) for x in bars["time"].tolist()]
    covers_entry = len(bars) < len(candles) or (len(times) and times[0] <= trade.entry_time)
    start = trade.entry_time if covers_entry or not len(times) else times[0]
    if len(times):
        gaps = [times[0] - start]
        gaps += [b - (a + tf) for a, b in zip(times[:-1], times[1:], strict=True)]
        last = times[-1] + tf
    else:
        gaps, last = [], trade.entry_time
    if tick_time > last:
        gaps.append(tick_time - last)
        last = tick_time
    gaps.append(now - last)
    closed = sum(g for g in gaps if g >= CLOSED_GAP_SECONDS)
    return max(elapsed - closed, 0.0) / 60.0


def check_range_invalidation_during_trade(
    trade: ActiveTrade, candles: np.ndarray, candles_outside: int, buffer_atr: float, timeframe_seconds: int = 0,
    digits: int | None = None, bars: np.ndarray | None = None,
) -> tuple[bool, list[str]]:
    """The range is broken when the last `candles_outside` closes since entry are all beyond an edge.

    Consecutive closes matter, not a single wick: one spike through the edge is exactly what a range
    scalp fades, while N closes outside means the market has accepted prices beyond it. `bars`: as in
    `market_minutes`.
    """
    rng = trade.range_data
    if rng is None or candles_outside <= 0:
        return False, []
    if bars is None:
        bars = bars_since_entry(trade, candles, timeframe_seconds)
    if len(bars) < candles_outside:
        return False, []
    buf = buffer_atr * rng.atr
    closes = bars["close"][-candles_outside:].tolist()  # N is 2-3: plain floats beat numpy reductions here
    hi, lo = rng.range_high + buf, rng.range_low - buf
    above = all(c > hi for c in closes)
    below = all(c < lo for c in closes)
    if not (above or below):
        return False, []
    side, edge = ("above the range high", rng.range_high) if above else ("below the range low", rng.range_low)
    last_t = float(bars["time"][-1])
    reasons = [
        f"{candles_outside} {rng.timeframe} candles in a row closed {side} {_fmt(edge, digits)} "
        f"(last close {_fmt(closes[-1], digits)} at {_hhmm(last_t)}), so the range no longer holds"
    ]
    return True, reasons


def calculate_breakeven_stop(
    trade: ActiveTrade,
    tick: Tick,
    point: float,
    trigger_r: float,
    cost_points: float = 0.0,
    stops_level_points: int = 0,
    digits: int = 5,
) -> float | None:
    """The stop to move to (entry plus costs) once the trade is `trigger_r` R in profit, else None.

    Returns None when the stop is already at or past that level, or when the broker's stops level
    would refuse it at the current price (it is tried again next cycle rather than sent to fail).
    """
    if trade.initial_risk <= 0:
        return None
    price = exit_price_of(trade, tick)
    return _breakeven_at(trade, price, trade.r_multiple(price), point, trigger_r, cost_points, stops_level_points,
                         digits)


def _breakeven_at(trade: ActiveTrade, price: float, r_now: float, point: float, trigger_r: float,
                  cost_points: float, stops_level_points: int, digits: int) -> float | None:
    """`calculate_breakeven_stop` from the exit price and its R (`trade.r_multiple(price)`) when the caller has
    them already (`check_early_exit_conditions` does); the trade's risk is not <= 0 (NaN goes on, as there)."""
    if r_now < trigger_r:
        return None
    sign = trade.direction.sign
    be = round(trade.entry_price + sign * cost_points * point, digits)
    if trade.sl and (be - trade.sl) * sign <= 0:  # already protected at least that well (sl 0 = no stop)
        return None
    if (price - be) * sign < stops_level_points * point:
        return None
    return be


def _high_low(bars: np.ndarray) -> tuple[float, float]:
    """(max of `high`, min of `low`) of `bars` (not empty), as `np.maximum.reduce` / `np.minimum.reduce` give them.

    A trade's bars since entry are a handful (median 6), and for so few values Python's max/min over the
    columns as floats cost a fraction of a ufunc reduction's set-up (every monitor cycle, every trade). They
    agree with the ufuncs whenever no value is NaN; the sum tells (NaN if any value is NaN, or for inf and
    -inf together), and then the ufuncs answer, NaN-propagating as ever; so they do for a zero result (which
    of 0.0 and -0.0 a tie gives differs)."""
    highs = bars["high"].tolist()
    lows = bars["low"].tolist()
    total = sum(highs) + sum(lows)
    if total == total:
        hi, lo = max(highs), min(lows)
        if hi and lo:
            return hi, lo
    return float(np.maximum.reduce(bars["high"])), float(np.minimum.reduce(bars["low"]))


def excursions_r(trade: ActiveTrade, tick: Tick, bars: np.ndarray) -> tuple[float, float]:
    """Best and worst excursion in R seen so far (MFE >= 0, MAE <= 0), including this cycle's bars and tick."""
    risk = trade.initial_risk
    if risk <= 0:
        return trade.mfe_r, trade.mae_r
    sign = trade.direction.sign
    spread = max(tick.ask - tick.bid, 0.0)
    price = exit_price_of(trade, tick)
    best = worst = (price - trade.entry_price) * sign / risk
    if len(bars):
        hi, lo = _high_low(bars)
        if sign > 0:
            best = max(best, (hi - trade.entry_price) / risk)
            worst = min(worst, (lo - trade.entry_price) / risk)
        else:  # a short closes at the ask: bar prices are bids, so add the spread
            best = max(best, (trade.entry_price - (lo + spread)) / risk)
            worst = min(worst, (trade.entry_price - (hi + spread)) / risk)
    return max(trade.mfe_r, best, 0.0), min(trade.mae_r, worst, 0.0)


def check_early_exit_conditions(
    trade: ActiveTrade,
    tick: Tick,
    candles: np.ndarray,
    now: float,
    tcfg,
    point: float,
    digits: int = 5,
    stops_level_points: int = 0,
    timeframe_seconds: int = 0,
    bars: np.ndarray | None = None,
) -> list[ExitSignal]:
    """Every exit signal that applies to `trade` now, most urgent first (CRITICAL → LOW).

    The caller acts on the first `close` signal and skips the rest; a `move_sl` only runs when no
    close is due, or when that close failed (the trade stays open). `tcfg` is the symbol's `TradingConfig`.
    `bars`: `bars_since_entry(trade, candles, timeframe_seconds)` when the caller has it already (the
    monitor does, for the excursions): the rules then do not search the bars again.
    """
    out: list[ExitSignal] = []
    ri = tcfg.range_invalidation
    bad, reasons = check_range_invalidation_during_trade(
        trade, candles, ri.candles_outside_range, ri.outside_buffer_atr, timeframe_seconds, digits, bars
    )
    if bad:
        out.append(_sig(trade, ExitPriority.CRITICAL, "range_invalidated", reasons[0], now))
    ex = tcfg.exits
    minutes = (now - trade.entry_time) / 60.0
    if minutes >= min(ex.max_minutes_in_trade, ex.stall_minutes):  # only then can a closed market matter
        minutes = market_minutes(trade, candles, tick.time, now, timeframe_seconds, bars)
    price = exit_price_of(trade, tick)
    r_now = trade.r_multiple(price)
    if minutes >= ex.max_minutes_in_trade:
        out.append(
            _sig(
                trade, ExitPriority.HIGH, "max_time_in_trade",
                f"the trade has been open {minutes:.0f} minutes, past the {ex.max_minutes_in_trade:.0f}-minute limit "
                f"for a scalp (now {r_text(r_now)})", now,
            )
        )
    if minutes >= ex.stall_minutes and trade.mfe_r < STALL_MAX_MFE_R and abs(r_now) < STALL_BAND_R:
        out.append(
            _sig(
                trade, ExitPriority.MEDIUM, "stalled",
                f"after {minutes:.0f} minutes price is still next to the entry ({r_text(r_now)}, best so far "
                f"{r_text(trade.mfe_r)}): the fade did not come", now,
            )
        )
    rng = trade.range_data
    if rng is not None and r_now > 0:
        gaps = rng.critical_gaps
        long = trade.direction is Direction.LONG
        reached = price >= gaps.upper_zone_start if long else price <= gaps.lower_zone_end
        tp_beyond = trade.tp > gaps.upper_zone_end if long else 0 < trade.tp < gaps.lower_zone_start
        if reached and tp_beyond:  # a TP beyond the far edge needs a breakout, which a range scalp does not bet on
            far = "upper" if long else "lower"
            out.append(
                _sig(
                    trade, ExitPriority.MEDIUM, "opposite_edge_reached",
                    f"price {_fmt(price, digits)} reached the {far} edge zone of the range ({r_text(r_now)}): "
                    f"taking the fade's profit before the edge rejects it", now,
                )
            )
    if not trade.breakeven_moved and not trade.initial_risk <= 0:  # calculate_breakeven_stop, with price and R known
        be = _breakeven_at(trade, price, r_now, point, ex.breakeven_trigger_r, ex.breakeven_cost_points,
                           stops_level_points, digits)
        if be is not None:
            sig = _sig(
                trade, ExitPriority.LOW, "breakeven",
                f"the trade reached {r_text(r_now)} (trigger {ex.breakeven_trigger_r:g} R): stop moved to entry "
                f"plus costs at {_fmt(be, digits)}", now,
            )
            out.append(sig.model_copy(update={"action": "move_sl", "new_sl": be}))
    out.sort(key=lambda s: s.priority.rank)
    return out


def emergency_exit(trade: ActiveTrade, now: float, by: str) -> ExitSignal:
    """While the emergency stop is on, every range scalp found open is closed: one that landed after the
    emergency (an unconfirmed order filling late, or an order that outlasted its wait) included."""
    return _sig(trade, ExitPriority.CRITICAL, "emergency",
                f"the emergency stop set by {by} is on, so every range scalp is closed", now)


def _sig(trade: ActiveTrade, priority: ExitPriority, kind: str, reason: str, now: float) -> ExitSignal:
    return ExitSignal(ticket=trade.ticket, priority=priority, kind=kind, reason=reason, created_at=now)
