"""Pure fill rules of the paper broker: where an order fills, when a stop triggers, what it earns.

Kept free of state and I/O so that the rules can be read (and verified by hand) in one page.

Price model. Bars are bid bars, as in MT5. The ask is bid + spread, the spread being the bar's
`spread` column in points (or the symbol's default spread when the data has none).
- A market order fills at the forming bar's open: buy at ask + slippage, sell at bid - slippage.
- A long exits at the bid, a short at the ask, so a short's SL/TP are checked against the bar's
  high/low *plus the spread*.
- Tie rule: when the stop loss and the take profit both lie inside one bar, we cannot know which came
  first, so the stop loss is assumed first (the pessimistic choice; a backtest must not flatter).
- Gaps: when a bar opens beyond the stop, the stop fills at that open (worse than the stop level).
  A take profit a bar opens beyond fills at that open too (better: the broker fills at market).
- Slippage (points) worsens entries, client closes and stop-loss fills; take profits, being limit-like,
  fill at their level.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Side = Literal["buy", "sell"]


@dataclass(frozen=True)
class BarPrices:
    open: float
    high: float
    low: float
    spread: float  # in price units


@dataclass(frozen=True)
class StopHit:
    reason: Literal["sl", "tp"]
    price: float


def entry_price(side: Side, bid: float, ask: float, slippage: float) -> float:
    return ask + slippage if side == "buy" else bid - slippage


def exit_price(side: Side, bid: float, ask: float, slippage: float) -> float:
    """Price a client close of a `side` position fills at (sell at bid / buy back at ask)."""
    return bid - slippage if side == "buy" else ask + slippage


def check_stops(side: Side, sl: float, tp: float, bar: BarPrices, slippage: float) -> StopHit | None:
    """Did this bar trigger the position's SL or TP? SL wins a tie (see module docstring)."""
    return stop_hit(side, sl, tp, bar.open, bar.high, bar.low, bar.spread, slippage)


def stop_hit(side: Side, sl: float, tp: float, o: float, h: float, lo: float, spread: float,
             slippage: float) -> StopHit | None:
    """`check_stops` on a bar's bid open/high/low and spread, without building a `BarPrices`: the replay asks
    it for every completed bar of every open position."""
    if side == "buy":
        if sl > 0 and lo <= sl:
            return StopHit("sl", (o if o <= sl else sl) - slippage)
        if tp > 0 and h >= tp:
            return StopHit("tp", o if o >= tp else tp)
        return None
    o, h, lo = o + spread, h + spread, lo + spread  # a short exits at the ask: the bid bar + spread
    if sl > 0 and h >= sl:
        return StopHit("sl", (o if o >= sl else sl) + slippage)
    if tp > 0 and lo <= tp:
        return StopHit("tp", o if o <= tp else tp)
    return None


def profit(side: Side, price_open: float, price_close: float, volume: float, contract_size: float) -> float:
    """Profit in the account currency (quote currency = USD for the symbols we trade)."""
    sign = 1.0 if side == "buy" else -1.0
    return round(sign * (price_close - price_open) * volume * contract_size, 2)


def stops_problem(side: Side, sl: float, tp: float, bid: float, ask: float, min_distance: float) -> str | None:
    """MT5's rule: a long's stops are measured from the bid, a short's from the ask; 0 means none."""
    ref = bid if side == "buy" else ask
    if side == "buy":
        if sl and sl >= ref:
            return f"stop loss {sl} must be below the bid {ref}"
        if tp and tp <= ref:
            return f"take profit {tp} must be above the bid {ref}"
    else:
        if sl and sl <= ref:
            return f"stop loss {sl} must be above the ask {ref}"
        if tp and tp >= ref:
            return f"take profit {tp} must be below the ask {ref}"
    for name, level in (("stop loss", sl), ("take profit", tp)):
        if level and abs(ref - level) < min_distance - 1e-9:
            return f"{name} {level} is closer than the stops level ({min_distance:g}) to {ref}"
    return None


def volume_problem(volume: float, vmin: float, vmax: float, step: float) -> str | None:
    if volume < vmin - 1e-9:
        return f"volume {volume:g} is below the minimum {vmin:g}"
    if volume > vmax + 1e-9:
        return f"volume {volume:g} is above the maximum {vmax:g}"
    steps = volume / step
    if abs(steps - round(steps)) > 1e-6:
        return f"volume {volume:g} is not a multiple of the step {step:g}"
    return None


def deviation_problem(requested: float | None, fill: float, deviation_points: int, point: float) -> str | None:
    """A market order asking for `requested` is refused (requote) if the fill moved beyond its deviation."""
    if requested and abs(fill - requested) > deviation_points * point + 1e-9:
        return f"price moved to {fill} (requested {requested}, deviation {deviation_points} points)"
    return None
