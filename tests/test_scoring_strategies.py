"""RangeScalpingScorer: score bounds, R:R inside the configured window, weights and conflicts."""
from __future__ import annotations

import copy
import json
from collections import Counter

import numpy as np
import pytest
from analysis_helpers import SYMBOLS, app, bar_close, candles, context_at, run

from core.analysis.scoring.scorer import RangeScalpingScorer
from core.analysis.scoring.strategies import STRATEGIES, Setup
from core.config.loading import load_config, validate_config_dict
from core.config.paths import DEFAULT_CONFIG_PATH
from core.domain.models import STRATEGY_NAMES, Direction, StrategyScore

S = RangeScalpingScorer()
W = load_config().strategy_weights


def _sample(symbol, k=260, seed=7):
    n = len(candles(symbol)["M5"])
    rng = np.random.default_rng(seed)
    for i in rng.choice(np.arange(400, n), size=k, replace=False):
        yield int(i), run(symbol, bar_close(symbol, int(i)))


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_scores_bounded_rr_inside_config_and_one_direction(symbol):
    cfg = app().for_symbol(symbol)
    seen = Counter()
    for _, r in _sample(symbol):
        dirs = {s.direction for s in r.strategies}
        assert len(dirs) <= 1, "long and short together"
        for s in r.strategies:
            seen[s.strategy] += 1
            assert 0 <= s.score <= 100
            assert set(s.components) >= {"location", "signal", "reward_risk", "range_quality", "base_score"}
            assert 0 <= s.components["location"] <= 30 and 0 <= s.components["signal"] <= 30
            assert 0 <= s.components["reward_risk"] <= 20 and 0 <= s.components["range_quality"] <= 20
            assert s.components["base_score"] == pytest.approx(
                sum(s.components[k] for k in ("location", "signal", "reward_risk", "range_quality")), abs=0.05)
            risk = (s.entry - s.stop_loss) * s.direction.sign
            assert risk > 0, "stop on the wrong side"
            if s.viable:
                rr = cfg.strategy_rr[s.strategy]
                assert rr.min - 1e-9 <= s.rr <= rr.max + 1e-9
                assert (s.take_profit - s.entry) * s.direction.sign / risk == pytest.approx(s.rr, rel=1e-3)
                assert s.score >= cfg.entry_filters.min_strategy_score
            else:
                assert "Not tradeable" in s.reason or "below the" in s.reason
        if r.strategies:
            scores = [s.score for s in r.strategies if s.viable]
            assert scores == sorted(scores, reverse=True)
        assert 0 <= r.confidence <= 100
        if not r.passed:
            assert r.confidence <= 40
    assert len(seen) >= 3, seen


def test_every_strategy_fires_on_real_data():
    seen = set()
    for symbol in SYMBOLS:
        for _, r in _sample(symbol, k=200, seed=11):
            seen |= {s.strategy for s in r.strategies}
    assert seen == set(STRATEGIES), f"never fired: {set(STRATEGIES) - seen}"


def _ctx():
    i = 30000
    ctx, _, _ = context_at("XAUUSDc", bar_close("XAUUSDc", i))
    assert ctx.rng is not None
    return ctx


def test_fit_rr_caps_extends_and_rejects():
    ctx = _ctx()
    r = ctx.rng
    rr = ctx.cfg.strategy_rr["bb_fade"]
    entry, sl = r.range_low + 0.1, r.range_low - 1.0  # long, risk 1.1
    far = Setup("bb_fade", Direction.LONG, entry, sl, entry + 10 * 1.1, 0.5, "")
    tp, got, problem = S.fit_rr(ctx, far)
    assert problem == "" and got == rr.max and tp == pytest.approx(entry + rr.max * 1.1)
    near = Setup("bb_fade", Direction.LONG, entry, sl, entry + 0.5 * 1.1, 0.5, "")
    tp, got, problem = S.fit_rr(ctx, near)
    assert problem == "" and got == rr.min and tp == pytest.approx(entry + rr.min * 1.1)
    # no room: the minimum target would lie beyond the opposite edge
    huge = Setup("bb_fade", Direction.LONG, entry, entry - (r.range_high - r.range_low), entry + 0.1, 0.5, "")
    _, _, problem = S.fit_rr(ctx, huge)
    assert "no room" in problem
    wrong = Setup("bb_fade", Direction.SHORT, entry, entry - 1, entry - 2, 0.5, "")
    assert "wrong side" in S.fit_rr(ctx, wrong)[2]


def _score(name, direction, score, viable=True):
    return StrategyScore(strategy=name, direction=direction, entry=100, stop_loss=99 if direction is Direction.LONG else 101,
                         take_profit=102 if direction is Direction.LONG else 98, rr=2.0, score=score, viable=viable)


def test_conflicts_keep_the_higher_scoring_side_with_a_reason():
    scores = [_score("liquidity_sweep", Direction.LONG, 61), _score("bb_fade", Direction.SHORT, 72),
              _score("rsi_bounce", Direction.SHORT, 55), _score("vwap_reversion", Direction.LONG, 58)]
    kept, note = S.check_strategy_conflicts(scores)
    assert {s.direction for s in kept} == {Direction.SHORT}
    assert [s.strategy for s in kept] == ["bb_fade", "rsi_bounce"]
    assert "liquidity_sweep wanted to go long (score 61)" in note and "higher score (72)" in note


def test_conflicts_prefer_viable_over_higher_unviable():
    scores = [_score("bb_fade", Direction.SHORT, 90, viable=False), _score("rsi_bounce", Direction.LONG, 60)]
    kept, note = S.check_strategy_conflicts(scores)
    assert [s.strategy for s in kept] == ["rsi_bounce"] and note


def test_no_conflict_no_note():
    kept, note = S.check_strategy_conflicts([_score("bb_fade", Direction.SHORT, 70), _score("rsi_bounce", Direction.SHORT, 50)])
    assert len(kept) == 2 and note is None
    assert S.check_strategy_conflicts([]) == ([], None)


def test_dynamic_weights_by_session_and_regime():
    base = [_score("bb_fade", Direction.SHORT, 60), _score("liquidity_sweep", Direction.SHORT, 60)]
    asian = {s.strategy: s.score for s in S.apply_dynamic_strategy_weights(base, ["asian"], "stable", W)}
    assert asian["bb_fade"] > 60 > asian["liquidity_sweep"]
    london = {s.strategy: s.score for s in S.apply_dynamic_strategy_weights(base, ["london"], "stable", W)}
    assert london["liquidity_sweep"] > london["bb_fade"]
    expanding = {s.strategy: s for s in S.apply_dynamic_strategy_weights(base, ["asian"], "expanding", W)}
    assert expanding["bb_fade"].score < asian["bb_fade"] and expanding["bb_fade"].weight == pytest.approx(1.1 * 0.8)
    capped = S.apply_dynamic_strategy_weights([_score("bb_fade", Direction.SHORT, 99)], ["asian"], "contracting", W)
    assert capped[0].score == 100


def test_min_score_marks_weak_setups_not_viable():
    out = S.apply_min_score([_score("bb_fade", Direction.SHORT, 40), _score("rsi_bounce", Direction.SHORT, 70)], 50)
    assert [s.viable for s in out] == [False, True] and "below the 50 minimum" in out[0].reason


def test_mid_range_entries_are_not_viable():
    ctx = _ctx()
    r = ctx.rng
    mid = r.range_mid
    setup = Setup("rsi_bounce", Direction.SHORT, mid, mid + 0.5 * ctx.ind.atr, mid - 0.6 * ctx.ind.atr, 0.9, "x.")
    s = S.score_setup(ctx, setup)
    assert not s.viable and "outside the entry zone at the edge" in s.reason
    edge = Setup("rsi_bounce", Direction.SHORT, r.critical_gaps.upper_zone_start + 1e-6, r.range_high + ctx.ind.atr,
                 mid, 0.9, "x.")
    assert "entry zone" not in S.score_setup(ctx, edge).reason


def test_strategy_weights_come_from_config_and_are_validated():
    """A desk retunes the weights in config; a negative, all-zero, unknown-strategy or unknown-session
    weight is refused with the key that is wrong."""
    raw = json.loads(DEFAULT_CONFIG_PATH.read_text())
    raw["strategy_weights"]["session"]["asian"]["bb_fade"] = 2.0
    cfg, issues = validate_config_dict(copy.deepcopy(raw))
    assert not issues
    base = [_score("bb_fade", Direction.SHORT, 40)]
    assert S.apply_dynamic_strategy_weights(base, ["asian"], "stable", cfg.strategy_weights)[0].score == 80
    for path, value, words in [
        (("session", "asian", "bb_fade"), -0.5, "must not be negative"),
        (("session", "asian", "no_such"), 1.0, "unknown strategy"),
        (("session", "moon"), {"bb_fade": 1.0}, "unknown session"),
        (("regime", "sideways"), {"bb_fade": 1.0}, "unknown regime"),
        (("regime", "stable"), {n: 0.0 for n in STRATEGY_NAMES}, "every weight is 0"),
    ]:
        bad = copy.deepcopy(raw)
        node = bad["strategy_weights"]
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
        cfg, issues = validate_config_dict(bad)
        assert cfg is None and any(words in str(i) for i in issues), (path, issues)


def test_strategy_names_in_the_domain_match_the_strategies():
    from core.analysis.scoring.strategies import STRATEGIES

    assert tuple(STRATEGIES) == STRATEGY_NAMES
