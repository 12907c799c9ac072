"""Review: strategy levels on real data are broker-ready prices.

MT5 rejects stops that are not multiples of the symbol's tick, and the trade card showed stops like
2662.8557678967345. Entry, SL and TP must be rounded to the symbol's digits, the SL rounded *away*
from the entry (never into the range), and the R:R recomputed from the rounded prices must still lie
inside the strategy's configured window.
"""
from __future__ import annotations

import pytest
from analysis_helpers import app, bar_close, candles, run

from core.domain.models import Direction


def _on_grid(p: float, digits: int) -> bool:
    return abs(round(p, digits) - p) <= 10.0 ** -(digits + 6) * max(1.0, abs(p))


@pytest.mark.parametrize("symbol", ["XAUUSDc", "EURUSDc", "BTCUSDc"])
def test_levels_are_rounded_and_rr_stays_inside_the_window(symbol):
    spec = app().symbols[symbol]
    rr_cfg = app().for_symbol(symbol).strategy_rr
    n = len(candles(symbol)["M5"])
    seen = viable = 0
    for i in range(300, n, max(1, n // 400)):
        r = run(symbol, bar_close(symbol, i))
        for s in r.strategies:
            seen += 1
            for p in (s.entry, s.stop_loss, s.take_profit):
                assert _on_grid(p, spec.digits), (symbol, i, s.strategy, p)
            if not s.viable:
                continue
            viable += 1
            sign = s.direction.sign
            assert (s.entry - s.stop_loss) * sign > 0 and (s.take_profit - s.entry) * sign > 0
            rr = abs(s.take_profit - s.entry) / abs(s.entry - s.stop_loss)
            c = rr_cfg[s.strategy]
            assert c.min - 1e-9 <= rr <= c.max + 1e-9, (symbol, i, s.strategy, rr)
            assert rr == pytest.approx(s.rr, abs=1e-4)
            if s.direction is Direction.LONG:
                assert s.stop_loss < r.range.range_low
            else:
                assert s.stop_loss > r.range.range_high
    assert seen > 20 and viable > 0
