"""Domain models: exact JSON round trips (hypothesis) and exit-priority ordering."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.domain.models import (
    ActiveTrade,
    Alert,
    AnalysisResult,
    ClosedTrade,
    CriticalGapZones,
    Direction,
    ExitPriority,
    ExitSignal,
    FilterResult,
    NoRange,
    ProposalState,
    RangeStructure,
    StrategyScore,
    TouchCount,
    TradeProposal,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

fl = st.floats(allow_nan=False, allow_infinity=False)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False)
text = st.text(max_size=20)
opt = st.none().__or__
ints = st.integers(min_value=-(2**62), max_value=2**62)
json_scalar = st.none() | st.booleans() | ints | fl | text
json_value = st.recursive(
    json_scalar,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(text, kids, max_size=3),
    max_leaves=8,
)
meta = st.dictionaries(text, json_value, max_size=4)
timeframes = st.sampled_from(["M1", "M5", "M15", "H1"])

gaps = st.builds(CriticalGapZones, upper_zone_start=fl, upper_zone_end=fl, lower_zone_start=fl, lower_zone_end=fl)
touches = st.builds(TouchCount, top=st.integers(0, 1000), bottom=st.integers(0, 1000))


def _range(nested) -> st.SearchStrategy[RangeStructure]:
    return st.builds(
        RangeStructure,
        symbol=text, timeframe=timeframes,
        range_type=st.sampled_from(["session", "previous_day", "dynamic"]),
        range_high=fl, range_low=fl, range_mid=fl, range_width_atr=fl, range_width_pct=fl, atr=fl,
        critical_gaps=gaps, touch_count=touches, validated=st.booleans(),
        nested_ranges=nested,
        expansion_state=st.sampled_from(["contracting", "stable", "expanding"]),
        invalidation_signals=st.lists(text, max_size=3),
        start_time=times, end_time=times,
    )


leaf_range = _range(st.just({}))
ranges = st.recursive(
    leaf_range,
    lambda inner: _range(st.dictionaries(timeframes, inner, max_size=3)),
    max_leaves=6,
)

scores = st.builds(
    StrategyScore,
    strategy=text, direction=st.sampled_from(Direction), entry=fl, stop_loss=fl, take_profit=fl, rr=fl,
    score=st.floats(0, 100), components=st.dictionaries(text, fl, max_size=4), weight=fl,
    viable=st.booleans(), reason=text,
)
filters = st.builds(FilterResult, name=text, passed=st.booleans(), reason=text, blocking=st.booleans(), details=meta)
analyses = st.builds(
    AnalysisResult,
    symbol=text, timeframe=timeframes, as_of=times, range=opt(ranges),
    no_range=opt(st.builds(NoRange, reason=text, message=text, details=meta)),
    filters=st.lists(filters, max_size=3), passed=st.booleans(), strategies=st.lists(scores, max_size=3),
    confidence=st.floats(0, 100), warnings=st.lists(text, max_size=3), config_version=text,
    data_timestamps=st.dictionaries(text, times, max_size=3), timings_ms=st.dictionaries(text, fl, max_size=3),
    session=text, confluence_score=fl,
)
proposals = st.builds(
    TradeProposal,
    id=text, symbol=text, strategy=scores, analysis=analyses, lot=fl, created_at=times, expires_at=times,
    state=st.sampled_from(ProposalState), decided_by=opt(text), decided_at=opt(times), ticket=opt(ints),
    fill_price=opt(fl), message=text,
)
active = st.builds(
    ActiveTrade,
    ticket=ints, proposal_id=opt(text), symbol=text, strategy=text, direction=st.sampled_from(Direction),
    entry_price=fl, sl=fl, tp=fl, initial_sl=fl, volume=fl, entry_time=times, range_data=opt(ranges),
    exit_manager_state=st.sampled_from(["active", "exiting", "exit_failed", "orphan"]),
    breakeven_moved=st.booleans(), mfe_r=fl, mae_r=fl, last_range_check=opt(times),
    last_state_change=opt(times), magic=ints, comment=text, metadata=meta, version=st.integers(0, 10**6),
)
exits = st.builds(
    ExitSignal,
    ticket=ints, priority=st.sampled_from(ExitPriority), kind=text, reason=text,
    action=st.sampled_from(["close", "move_sl", "partial_close"]), new_sl=opt(fl),
    close_fraction=fl, created_at=times,
)
closed = st.builds(
    ClosedTrade,
    ticket=ints, proposal_id=opt(text), symbol=text, strategy=text, direction=st.sampled_from(Direction),
    volume=fl, entry_price=fl, exit_price=fl, initial_sl=fl, tp=fl, entry_time=times, exit_time=times,
    pnl=fl, commission=fl, r_multiple=fl, planned_rr=fl, mfe_r=fl, mae_r=fl, exit_reason=text,
    session=text, metadata=meta,
)
alerts = st.builds(
    Alert,
    kind=text, severity=st.sampled_from(["critical", "high", "medium", "info"]), title=text, text=text,
    symbol=opt(text), ticket=opt(ints), created_at=times, dedup_key=text, trade=opt(active),
    range_data=opt(ranges), exit_price=opt(fl),
)


def _assert_round_trip(model) -> None:
    cls = type(model)
    d = model.to_dict()
    # through a dict, through JSON text (the store), and through pydantic's own JSON
    for back in (cls.from_dict(d), cls.from_dict(json.loads(json.dumps(d))), cls.from_json(model.to_json())):
        assert back == model
        assert back.to_dict() == d
        assert back.to_json() == model.to_json()


@pytest.mark.parametrize(
    "strategy",
    [ranges, scores, proposals, active, exits, analyses, closed, alerts],
    ids=["RangeStructure", "StrategyScore", "TradeProposal", "ActiveTrade", "ExitSignal", "AnalysisResult",
         "ClosedTrade", "Alert"],
)
def test_exact_json_round_trip(strategy):
    @SETTINGS
    @given(strategy)
    def check(model):
        _assert_round_trip(model)

    check()


@SETTINGS
@given(ranges)
def test_nested_ranges_survive(r):
    back = RangeStructure.from_json(r.to_json())
    def depth(x):
        return 1 + max((depth(n) for n in x.nested_ranges.values()), default=0)
    assert depth(back) == depth(r)


def test_a_known_nested_range_round_trips_bit_exactly():
    inner = RangeStructure(
        symbol="BTCUSDc", timeframe="H1", range_type="session", range_high=104_123.47, range_low=0.1 + 0.2,
        range_mid=1 / 3, range_width_atr=2.5e-300, range_width_pct=5e-324, atr=1.7976931348623157e308,
        critical_gaps=CriticalGapZones(upper_zone_start=1, upper_zone_end=2, lower_zone_start=0, lower_zone_end=0.5),
        touch_count=TouchCount(top=3, bottom=2), validated=True, start_time=1.7e9 + 0.001, end_time=1.7e9 + 3600,
    )
    outer = inner.model_copy(update={"timeframe": "M5", "nested_ranges": {"H1": inner, "M15": inner}})
    back = RangeStructure.from_json(outer.to_json())
    assert back == outer
    assert back.nested_ranges["H1"].range_low == 0.1 + 0.2 and back.nested_ranges["H1"].range_width_pct == 5e-324


def test_nan_and_infinity_survive_json():
    """An indicator NaN that leaks into a model must not turn into null and break crash recovery."""
    sig = ExitSignal(ticket=1, priority=ExitPriority.HIGH, kind="k", reason="r", new_sl=math.nan,
                     close_fraction=math.inf)
    back = ExitSignal.from_json(sig.to_json())
    assert math.isnan(back.new_sl) and back.close_fraction == math.inf


def test_exit_priority_ordering():
    P = ExitPriority
    assert P.CRITICAL > P.HIGH > P.MEDIUM > P.LOW
    assert P.LOW < P.CRITICAL and P.HIGH >= P.HIGH and P.MEDIUM <= P.HIGH
    assert max(P) is P.CRITICAL and min(P) is P.LOW
    assert [p.rank for p in (P.CRITICAL, P.HIGH, P.MEDIUM, P.LOW)] == [0, 1, 2, 3]
    sigs = [ExitSignal(ticket=i, priority=p, kind="k", reason="r") for i, p in enumerate([P.LOW, P.CRITICAL, P.MEDIUM, P.HIGH])]
    assert [s.priority for s in sorted(sigs, key=lambda s: s.priority.rank)] == [P.CRITICAL, P.HIGH, P.MEDIUM, P.LOW]
    assert [s.priority for s in sorted(sigs, key=lambda s: s.priority, reverse=True)] == [P.CRITICAL, P.HIGH, P.MEDIUM, P.LOW]
    assert P("high") is P.HIGH and P.HIGH == "high"  # still a plain string on the wire


def test_models_reject_unknown_fields_and_bad_values():
    with pytest.raises(ValueError):
        ExitSignal.from_dict({"ticket": 1, "priority": "urgent", "kind": "k", "reason": "r"})
    with pytest.raises(ValueError):
        ExitSignal.from_dict({"ticket": 1, "priority": "high", "kind": "k", "reason": "r", "extra": 1})
    with pytest.raises(ValueError):
        TouchCount(top=-1, bottom=0)
