"""Review of the breakeven rule for a position with NO stop at the broker (sl = 0: an adopted orphan
whose stop was removed, or a stop deleted by hand in MetaTrader and synced from the broker), on real
XAUUSDc prices: both directions must get their breakeven stop, on the correct side of the entry."""
from __future__ import annotations

import lifecycle_helpers as k
import pytest

from core.brokers.base import Tick
from core.domain.models import ActiveTrade, Direction
from core.exits.rules import calculate_breakeven_stop


@pytest.fixture(scope="module")
def bars():
    return k.m5(k.config(), "XAUUSDc")


def _one_r_later(bars, direction: Direction, risk: float = 3.0, start: int = 30000):
    """A real entry (bar open) and a later real bar open at least 1.2 R in the trade's favour."""
    spread = 0.2
    for i in range(start, len(bars) - 60):
        entry = float(bars["open"][i]) + (spread if direction is Direction.LONG else 0.0)
        for j in range(i + 1, i + 60):
            bid = float(bars["open"][j])
            px = bid if direction is Direction.LONG else bid + spread
            if (px - entry) * direction.sign >= 1.2 * risk:
                return entry, Tick(time=float(bars["time"][j]), bid=bid, ask=round(bid + spread, 2))
    raise AssertionError("no such move in the data")


@pytest.mark.parametrize("direction", [Direction.LONG, Direction.SHORT])
def test_breakeven_is_set_when_the_position_has_no_stop(bars, direction):
    entry, tick = _one_r_later(bars, direction)
    sign = direction.sign
    trade = ActiveTrade(ticket=7, symbol="XAUUSDc", strategy="bb_fade", direction=direction, entry_price=entry,
                        sl=0.0, tp=0.0, initial_sl=round(entry - sign * 3.0, 2), volume=0.01, entry_time=tick.time - 600)
    be = calculate_breakeven_stop(trade, tick, point=0.01, trigger_r=1.0, cost_points=5, stops_level_points=20,
                                  digits=2)
    assert be is not None, f"a {direction.value} with no stop never got its breakeven stop"
    assert be == pytest.approx(entry + sign * 0.05)  # entry plus costs: above a long's entry, below a short's
    # and with a stop already past breakeven it is left alone (never loosened)
    tighter = trade.model_copy(update={"sl": round(entry + sign * 1.0, 2)})
    assert calculate_breakeven_stop(tighter, tick, 0.01, 1.0, 5, 20, 2) is None
