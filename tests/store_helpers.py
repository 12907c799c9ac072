"""Builders for store/error/alert tests: small but valid domain objects."""
from __future__ import annotations

from core.domain.models import (
    ActiveTrade,
    AnalysisResult,
    ClosedTrade,
    CriticalGapZones,
    Direction,
    RangeStructure,
    StrategyScore,
    TouchCount,
    TradeProposal,
)
from core.store import new_proposal_id

T0 = 1_700_000_000.0


def make_range(symbol: str = "BTCUSDc") -> RangeStructure:
    return RangeStructure(
        symbol=symbol, timeframe="M5", range_type="dynamic", range_high=101.0, range_low=99.0, range_mid=100.0,
        range_width_atr=2.0, range_width_pct=2.0, atr=1.0,
        critical_gaps=CriticalGapZones(upper_zone_start=100.6, upper_zone_end=101.0, lower_zone_start=99.0,
                                       lower_zone_end=99.4),
        touch_count=TouchCount(top=3, bottom=2), validated=True, start_time=T0 - 3600, end_time=T0,
    )


def make_proposal(pid: str | None = None, symbol: str = "BTCUSDc", created_at: float = T0,
                  expiry: float = 120.0) -> TradeProposal:
    strat = StrategyScore(strategy="vwap_reversion", direction=Direction.LONG, entry=99.3, stop_loss=98.8,
                          take_profit=100.05, rr=1.5, score=72.0, reason="lower edge + VWAP below")
    analysis = AnalysisResult(symbol=symbol, timeframe="M5", as_of=created_at, range=make_range(symbol), passed=True,
                              strategies=[strat], confidence=72.0, session="london", confluence_score=78.0)
    return TradeProposal(id=pid or new_proposal_id(), symbol=symbol, strategy=strat, analysis=analysis, lot=0.01,
                         created_at=created_at, expires_at=created_at + expiry)


def make_trade(ticket: int = 1001, proposal_id: str | None = None, symbol: str = "BTCUSDc") -> ActiveTrade:
    return ActiveTrade(ticket=ticket, proposal_id=proposal_id, symbol=symbol, strategy="vwap_reversion",
                       direction=Direction.LONG, entry_price=99.3, sl=98.8, tp=100.05, initial_sl=98.8, volume=0.01,
                       entry_time=T0 + 5, range_data=make_range(symbol), magic=730125,
                       comment=f"rs:{proposal_id}" if proposal_id else "")


def make_closed(trade: ActiveTrade, exit_price: float = 100.05, exit_time: float = T0 + 600) -> ClosedTrade:
    return ClosedTrade(ticket=trade.ticket, proposal_id=trade.proposal_id, symbol=trade.symbol, strategy=trade.strategy,
                       direction=trade.direction, volume=trade.volume, entry_price=trade.entry_price,
                       exit_price=exit_price, initial_sl=trade.initial_sl, tp=trade.tp, entry_time=trade.entry_time,
                       exit_time=exit_time, pnl=(exit_price - trade.entry_price) * trade.volume,
                       r_multiple=trade.r_multiple(exit_price), planned_rr=1.5, exit_reason="tp_hit")
