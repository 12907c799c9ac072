"""`ExecutionEngine.create_proposals(analysis, only=name)` (a replay's auto-approver, core.backtest.live) gives
the very proposal the general call gives for that strategy, and no other."""
from __future__ import annotations

from core.config.loading import load_config
from core.domain.clock import FixedClock
from core.domain.models import (
    AnalysisResult,
    CriticalGapZones,
    Direction,
    ProposalState,
    RangeStructure,
    StrategyScore,
    TouchCount,
)
from core.store import Store
from core.trading.execution import ExecutionEngine

SYMBOL = "XAUUSDc"


def _analysis(passed: bool = True) -> AnalysisResult:
    def s(name, viable=True):
        return StrategyScore(strategy=name, direction=Direction.LONG, entry=2000.0, stop_loss=1995.5,
                             take_profit=2009.25, rr=2.05, score=71.5, components={"a": 0.5}, viable=viable)
    rng = RangeStructure(
        symbol=SYMBOL, timeframe="M5", range_type="dynamic", range_high=2010.0, range_low=1995.0, range_mid=2002.5,
        range_width_atr=5.0, range_width_pct=0.75, atr=3.0,
        critical_gaps=CriticalGapZones(upper_zone_start=2007.0, upper_zone_end=2010.0, lower_zone_start=1995.0,
                                       lower_zone_end=1998.0),
        touch_count=TouchCount(top=2, bottom=3), validated=True, start_time=1.69e9, end_time=1.7e9,
    )
    return AnalysisResult(symbol=SYMBOL, timeframe="M5", as_of=1.7e9, range=rng, passed=passed, confidence=66.0,
                          strategies=[s("bb_fade"), s("rsi_bounce", viable=False), s("vwap_reversion")])


def _engine() -> tuple[ExecutionEngine, Store]:
    clock = FixedClock(1.7e9)
    store = Store(":memory:", clock=clock)
    return ExecutionEngine(load_config(), store, None, None, None, clock), store


def _key(p):
    return p.model_dump(exclude={"id"})


def test_only_gives_the_general_calls_proposal_for_that_strategy_alone():
    eng, store = _engine()
    a = _analysis()
    every = eng.create_proposals(a)
    assert [p.strategy.strategy for p in every] == ["bb_fade", "vwap_reversion"]
    for p in every:
        (mine,) = eng.create_proposals(a, only=p.strategy.strategy)
        assert _key(mine) == _key(p)
        assert _key(store.proposals.get(mine.id)) == _key(store.proposals.get(p.id))
        assert mine.state is ProposalState.PENDING
    # a strategy that is not viable, not offered, or an analysis that did not pass: nothing
    assert eng.create_proposals(a, only="rsi_bounce") == []
    assert eng.create_proposals(a, only="liquidity_sweep") == []
    assert eng.create_proposals(_analysis(passed=False), only="bb_fade") == []
    assert len(store.proposals.list()) == 4
    store.close()
