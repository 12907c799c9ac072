"""Everything one analysis call knows, computed once and shared by filters and strategies.

Filters and strategies read the same ATR, RSI, bands and VWAP; computing them once per call (on the
trailing window) is both the fast path and the guarantee that every layer judges the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from core.analysis.range.bars import Bars
from core.brokers.base import Tick
from core.config.market import SymbolSpec
from core.config.model import TradingConfig
from core.data.sources.news import NewsCalendar
from core.data.sources.orderflow import OrderFlowSnapshot
from core.domain.models import NoRange, RangeStructure
from core.domain.sessions import SessionWindow


@dataclass
class Indicators:
    atr: float
    rsi: float
    rsi_prev: float
    bb_mid: float
    bb_upper: float
    bb_lower: float
    vwap: float
    vwap_sigma: float
    vwap_time: float | None  # close time of the last bar in the VWAP, None when there is none
    vwap_bars: int  # bars in the current VWAP session


@dataclass
class AnalysisContext:
    symbol: str
    cfg: TradingConfig
    spec: SymbolSpec
    now: float
    bars: Bars  # primary timeframe, closed bars only
    ind: Indicators
    sessions: list[SessionWindow]
    rng: RangeStructure | None = None
    no_range: NoRange | None = None
    prev_day: tuple[float, float] | None = None  # (high, low)
    tick: Tick | None = None
    news: NewsCalendar | None = None
    news_error: str | None = None
    orderflow: OrderFlowSnapshot | None = None
    orderflow_error: str | None = None  # why there is no snapshot (no feed covers the time, the exchange failed)
    feed_tick_time: float | None = None  # the live feed's last tick, even when too old to trade at (None: history)
    higher_tf: dict[str, RangeStructure] = field(default_factory=dict)
    # set by the data-quality check: which fallbacks are in force ("vwap" -> "use_session_vwap", ...)
    fallbacks: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def price(self) -> float:
        if self.tick is not None:
            return self.tick.mid
        return float(self.bars.close[-1]) if len(self.bars) else float("nan")

    @property
    def spread(self) -> float:
        """Current spread in price units: the live quote, else the last bar's, else the configured default."""
        if self.tick is not None and self.tick.ask > 0 and self.tick.bid > 0:
            return self.tick.ask - self.tick.bid
        pts = float(self.bars.spread[-1]) if len(self.bars) else 0.0
        if pts <= 0:
            pts = float(self.spec.default_spread_points)
        return pts * self.spec.point

    @property
    def session_names(self) -> list[str]:
        return [w.name for w in self.sessions]

    def entry_price(self, long: bool) -> float:
        if self.tick is not None:
            return self.tick.ask if long else self.tick.bid
        return float(self.bars.close[-1]) if len(self.bars) else float("nan")
