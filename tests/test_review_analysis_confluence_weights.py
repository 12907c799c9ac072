"""Review: confluence weights are normalised over the components the rule scores.

`check_3_confluence_rule_weighted` scores structure, location and confirmation and divides by the sum
of *all* configured weights, so a misspelt or extra key ("confirmaton", "volume") silently capped
every score (and a misspelling also dropped a component to weight 0). The config now rejects
unknown keys with a clear message.
"""
from __future__ import annotations

import json

import pytest
from analysis_helpers import app_with, ts

from core.config.loading import validate_config_dict
from core.config.paths import DEFAULT_CONFIG_PATH


@pytest.mark.parametrize("weights", [
    {"structure": 0.4, "location": 0.35, "confirmaton": 0.25},
    {"volume": 1.0},
])
def test_unknown_confluence_weight_keys_are_rejected(weights):
    raw = json.loads(DEFAULT_CONFIG_PATH.read_text())
    raw["confluence"]["weights"] = weights
    cfg, issues = validate_config_dict(raw)
    assert cfg is None
    text = json.dumps(issues, default=str)
    assert "confluence" in text and "unknown confluence weight" in text


def test_partial_override_of_known_weights_still_validates():
    from analysis_helpers import context_at

    from core.analysis.filters.risk_filters import RangeScalpingRiskFilters

    cfg = app_with({"confluence": {"weights": {"structure": 1.0}}})
    assert set(cfg.confluence.weights) == {"structure", "location", "confirmation"}
    ctx, _, _ = context_at("XAUUSDc", ts("2025-06-03T10:00"), cfg=cfg)
    _, score, comps = RangeScalpingRiskFilters().check_3_confluence_rule_weighted(ctx)
    w = cfg.confluence.weights
    expected = sum(comps[k] * w[k] for k in comps) / sum(w.values())
    assert score == pytest.approx(round(expected, 2), abs=0.01)
