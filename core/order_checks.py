"""Pre-trade checks on an order: is the price still the proposed one, are the stops legal, is the lot valid.

Pure functions of prices and the broker's symbol rules, so they are unit-tested without a broker and
shared by live execution and backtests.
"""
from __future__ import annotations

import math

from pydantic import BaseModel

from core.brokers.base import SymbolInfo
from core.models import Direction


class PriceCheck(BaseModel):
    ok: bool
    current_price: float
    slippage_pct: float
    message: str


def _fmt(x: float, digits: int) -> str:
    return f"{x:.{digits}f}"


def validate_entry_price(
    direction: Direction, proposed_entry: float, bid: float, ask: float, max_slippage_pct: float, digits: int = 5
) -> PriceCheck:
    """Refuse to enter when price has left the proposed entry by more than `max_slippage_pct` %."""
    current = ask if direction is Direction.LONG else bid
    slip = abs(current - proposed_entry) / proposed_entry * 100 if proposed_entry else math.inf
    if slip > max_slippage_pct:
        way = "up" if current > proposed_entry else "down"
        return PriceCheck(
            ok=False, current_price=current, slippage_pct=slip,
            message=(
                f"Price has moved {way} {slip:.2f}% since the proposal (entry {_fmt(proposed_entry, digits)}, "
                f"now {_fmt(current, digits)}), more than the {max_slippage_pct:g}% allowed, so I did not trade."
            ),
        )
    return PriceCheck(ok=True, current_price=current, slippage_pct=slip, message="price is still at the entry")


def adjust_stops(
    direction: Direction, price: float, sl: float, tp: float, info: SymbolInfo, spread: float = 0.0
) -> tuple[float, float, list[str]]:
    """Keep the strategy's SL/TP but push them out to the broker's minimum distance where needed."""
    sign = direction.sign
    min_dist = (info.trade_stops_level + 1) * info.point + spread if info.trade_stops_level else 0.0
    # with no stops level the SL must still clear the spread: a long's stop is hit by the bid, not the ask
    sl_min = min_dist or spread + info.point
    notes = []
    if (price - sl) * sign < sl_min:
        sl = price - sign * sl_min
        notes.append(f"SL widened to the broker's stops level ({info.trade_stops_level} points)" if min_dist
                     else "SL widened to clear the spread")
    if tp and min_dist and (tp - price) * sign < min_dist:
        tp = price + sign * min_dist
        notes.append(f"TP moved out to the broker's stops level ({info.trade_stops_level} points)")
    return round(sl, info.digits), round(tp, info.digits), notes


def normalise_lot(lot: float, info: SymbolInfo) -> float:
    step = info.volume_step or 0.01
    n = max(round(lot / step), 1)
    vol = max(n * step, info.volume_min)
    return round(min(vol, info.volume_max), 8)
