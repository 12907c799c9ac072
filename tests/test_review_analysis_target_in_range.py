"""Review: a fade's take profit never lies beyond the range's far edge.

VWAP reversion aims at VWAP; after a one-way day VWAP can sit outside the box, and the card offered a
long from the range bottom with its TP above the range top (XAUUSDc 2025-06-16 13:45: TP 3423.95 with
the top at 3422.63, on a passing analysis). The far edge is where the range turns price back, so a
natural level past it is capped at the edge and then fitted into the R:R window like any other.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
from analysis_helpers import context_at, run, ts

from core.analysis.scoring.scorer import RangeScalpingScorer
from core.analysis.scoring.strategies import vwap_reversion
from core.domain.models import Direction


@pytest.mark.parametrize("symbol,when,direction", [
    ("XAUUSDc", "2025-06-16 13:45", Direction.LONG),   # passed; VWAP above the top
    ("XAUUSDc", "2025-01-31 20:05", Direction.LONG),
    ("EURUSDc", "2026-06-02 18:50", Direction.LONG),
    ("EURUSDc", "2026-06-11 17:50", Direction.SHORT),  # VWAP below the bottom
])
def test_vwap_target_past_the_far_edge_is_capped_at_it(symbol, when, direction):
    ctx, _, _ = context_at(symbol, ts(when))
    setup = vwap_reversion(ctx)
    far = ctx.rng.range_high if direction is Direction.LONG else ctx.rng.range_low
    assert setup is not None and setup.direction is direction
    assert (setup.target - far) * direction.sign > 0, "this bar's VWAP no longer lies past the far edge"
    s = next(x for x in run(symbol, ts(when)).strategies if x.strategy == "vwap_reversion")
    assert s.viable, s.reason
    assert (s.take_profit - far) * direction.sign <= 0, (s.take_profit, far)
    assert s.rr == pytest.approx(abs(s.take_profit - s.entry) / abs(s.entry - s.stop_loss), abs=1e-4)


def test_capped_target_without_room_for_the_minimum_is_not_viable():
    """Capping can leave less than the minimum R:R; the push-out must not then go through the edge."""
    ctx, _, _ = context_at("XAUUSDc", ts("2025-06-16 13:45"))
    setup = vwap_reversion(ctx)
    # a stop so far away that even the far edge pays less than the 1.0 R:R minimum
    wide = replace(setup, stop_loss=setup.entry - 2 * (ctx.rng.range_high - setup.entry))
    tp, rr, problem = RangeScalpingScorer().fit_rr(ctx, wide)
    assert tp == ctx.rng.range_high and rr == pytest.approx(0.5)
    assert "no room" in problem
