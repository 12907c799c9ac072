"""Review of the pre-trade stop adjustment against the broker's own rule (`stops_problem`, MT5's: a
long's stops are measured from the bid, a short's from the ask), on real BTCUSDc quotes where the
spread is wide (18 USD) compared with a tight scalp stop."""
from __future__ import annotations

import lifecycle_helpers as k
import numpy as np
import pytest

from core.brokers.base import SymbolInfo
from core.brokers.paper.fills import stops_problem
from core.domain.models import Direction
from core.trading.order_checks import adjust_stops


@pytest.fixture(scope="module")
def quotes():
    cfg = k.config()
    bars = k.m5(cfg, "BTCUSDc")
    spec = cfg.symbols["BTCUSDc"]
    rng = np.random.default_rng(5)
    out = []
    for i in rng.choice(len(bars), 40, replace=False):
        bid = float(bars["open"][i])
        spread = (int(bars["spread"][i]) or spec.default_spread_points) * spec.point
        out.append((bid, round(bid + spread, 2)))
    return out


@pytest.mark.parametrize("stops_level", [0, 500])
@pytest.mark.parametrize("direction", [Direction.LONG, Direction.SHORT])
def test_adjusted_stops_always_pass_the_brokers_rule(quotes, stops_level, direction):
    info = SymbolInfo(name="BTCUSDc", digits=2, point=0.01, trade_stops_level=stops_level)
    side = "buy" if direction is Direction.LONG else "sell"
    sign = direction.sign
    for bid, ask in quotes:
        price = ask if direction is Direction.LONG else bid
        for dist in (0.5, 3.0, 10.0, 17.0, 40.0, 250.0):  # planned SL/TP distances from the entry price
            sl, tp, _ = adjust_stops(direction, price, price - sign * dist, price + sign * dist, info,
                                     spread=ask - bid)
            problem = stops_problem(side, sl, tp, bid, ask, stops_level * info.point)
            assert problem is None, f"{direction.value} at {price} dist {dist}: {problem}"
            assert (price - sl) * sign >= dist - 1e-9  # a stop is only ever widened, never tightened
