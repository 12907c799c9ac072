"""Review: a strategy without a `strategy_rr` entry must still never be viable with its target behind
the entry. `fit_rr` returned early when the strategy had no configured window, before its
"price is already past the target" check, so such a setup could be proposed with TP on the stop side.
"""
from __future__ import annotations

import json

import pytest
from analysis_helpers import context_at, ts

from core.analysis.scoring.scorer import RangeScalpingScorer
from core.analysis.scoring.strategies import Setup
from core.config.loading import validate_config_dict
from core.config.paths import DEFAULT_CONFIG_PATH
from core.domain.models import Direction


@pytest.fixture(scope="module")
def no_rr_cfg():
    raw = json.loads(DEFAULT_CONFIG_PATH.read_text())
    raw["strategy_rr"] = {}
    cfg, issues = validate_config_dict(raw)
    assert cfg is not None, issues
    return cfg


@pytest.mark.parametrize("direction", [Direction.LONG, Direction.SHORT])
def test_target_behind_the_entry_is_not_tradeable_without_an_rr_window(no_rr_cfg, direction):
    ctx, _, _ = context_at("XAUUSDc", ts("2025-06-03T10:00"), cfg=no_rr_cfg)
    assert ctx.rng is not None
    atr, sign = ctx.ind.atr, direction.sign
    edge = ctx.rng.range_low if direction is Direction.LONG else ctx.rng.range_high
    setup = Setup("bb_fade", direction, entry=edge, stop_loss=edge - sign * atr, target=edge - sign * 0.5 * atr,
                  signal=0.8, note="test")
    scorer = RangeScalpingScorer()
    tp, rr, problem = scorer.fit_rr(ctx, setup)
    assert rr < 0 and "past the target" in problem
    s = scorer.score_setup(ctx, setup)
    assert not s.viable and "past the target" in s.reason
    ahead = Setup("bb_fade", direction, entry=edge, stop_loss=edge - sign * atr, target=edge + sign * 2 * atr,
                  signal=0.8, note="test")
    assert scorer.score_setup(ctx, ahead).viable
