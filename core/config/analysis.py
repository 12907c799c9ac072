"""The config sections the analysis reads: range detection and width, entry filters, indicators, confluence,
false-range checks, risk:reward bands and the strategy weights. Each is a `_Section` with its own sanity rules;
`core.config.model.TradingConfig` assembles them."""
from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from core.config.sections import _Section


class RiskReward(_Section):
    min: float
    target: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> RiskReward:
        if self.min < 0.5:
            raise ValueError(f"R:R min {self.min} is below 0.5: such trades risk more than they can win")
        if not (self.min <= self.target <= self.max):
            raise ValueError(f"R:R must satisfy min <= target <= max (got {self.min}, {self.target}, {self.max})")
        return self


class EntryFilters(_Section):
    price_edge_threshold_atr: float = Field(ge=0.1, le=5.0)
    min_confluence_score: float = Field(ge=0, le=100)
    min_strategy_score: float = Field(ge=0, le=100)
    rsi_oversold: float = Field(ge=0, le=100)
    rsi_overbought: float = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _rsi(self) -> EntryFilters:
        if self.rsi_oversold >= self.rsi_overbought:
            raise ValueError("rsi_oversold must be below rsi_overbought")
        return self


class EffectiveATR(_Section):
    atr_period: int = Field(ge=2, le=500)
    bb_period: int = Field(ge=2, le=500)
    bb_std: float = Field(gt=0, le=5)
    bb_width_multiplier: float = Field(gt=0, le=5)
    rsi_period: int = Field(ge=2, le=500)


class RangeDetection(_Section):
    timeframe: str
    nested_timeframes: list[str]
    lookback_bars: int = Field(ge=10, le=5000)
    min_candles: int = Field(ge=10, le=5000)
    swing_fractal_bars: int = Field(ge=1, le=10)
    touch_tolerance_atr: float = Field(gt=0, le=2)
    min_touches_per_side: int = Field(ge=1, le=20)
    critical_zone_fraction: float = Field(gt=0, le=0.5)
    session_range: str

    @field_validator("timeframe")
    @classmethod
    def _tf(cls, v: str) -> str:
        from core.domain.timeframes import Timeframe

        return Timeframe.parse(v).value

    @field_validator("nested_timeframes")
    @classmethod
    def _tfs(cls, v: list[str]) -> list[str]:
        from core.domain.timeframes import Timeframe

        return [Timeframe.parse(x).value for x in v]


class RangeWidth(_Section):
    min_pct: float = Field(gt=0, le=50)
    max_pct: float = Field(gt=0, le=50)

    @model_validator(mode="after")
    def _ordered(self) -> RangeWidth:
        if self.min_pct >= self.max_pct:
            raise ValueError(f"range width min_pct ({self.min_pct}) must be below max_pct ({self.max_pct})")
        return self


class RangeInvalidation(_Section):
    candles_outside_range: int = Field(ge=1, le=50)
    outside_buffer_atr: float = Field(ge=0, le=5)
    expansion_threshold_pct: float = Field(gt=0, le=1000)


class Activity(_Section):
    min_atr_pct: float = Field(ge=0, le=10)
    min_tick_volume: float = Field(ge=0)
    max_spread_atr_ratio: float = Field(gt=0, le=10)


class Confluence(_Section):
    weights: dict[str, float]
    min_score: float = Field(ge=0, le=100)

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        if any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError("confluence weights must be non-negative and sum to more than 0")
        # the rule scores exactly these; any other key would silently dilute the normalisation
        unknown = sorted(set(v) - {"structure", "location", "confirmation"})
        if unknown:
            raise ValueError(f"unknown confluence weight {', '.join(unknown)} (use structure, location, confirmation)")
        return v


class FalseRange(_Section):
    max_trend_slope_atr: float = Field(gt=0)
    max_volume_imbalance: float = Field(gt=0, le=1)
    max_closes_beyond_edges: int = Field(ge=0)


REGIMES = ("contracting", "stable", "expanding")


class StrategyWeights(_Section):
    """The seed's dynamic weights: a strategy's score is multiplied by its weight in each open session
    (overlaps multiply; `off_hours` when none is open) and in the range's volatility regime. A strategy
    not named weighs 1. They live in config so a desk can retune them, and a backtest sweep can vary them."""

    session: dict[str, dict[str, float]] = Field(default_factory=lambda: {
        "asian": {"bb_fade": 1.1, "rsi_bounce": 1.1, "liquidity_sweep": 0.9},
        "london": {"liquidity_sweep": 1.15, "pdh_pdl_rejection": 1.1, "bb_fade": 0.95},
        "new_york": {"vwap_reversion": 1.1, "liquidity_sweep": 1.1},
        "off_hours": {"bb_fade": 0.9, "rsi_bounce": 0.9, "vwap_reversion": 0.9, "pdh_pdl_rejection": 0.9,
                      "liquidity_sweep": 0.9},
    })
    regime: dict[str, dict[str, float]] = Field(default_factory=lambda: {
        "contracting": {"bb_fade": 1.1, "rsi_bounce": 1.05},
        "stable": {},
        "expanding": {"bb_fade": 0.8, "rsi_bounce": 0.85, "vwap_reversion": 0.9, "liquidity_sweep": 1.05},
    })

    @model_validator(mode="after")
    def _sane(self) -> StrategyWeights:
        from core.domain.models import STRATEGY_NAMES

        for table, rows in (("session", self.session), ("regime", self.regime)):
            for key, weights in rows.items():
                where = f"strategy_weights.{table}.{key}"
                unknown = sorted(set(weights) - set(STRATEGY_NAMES))
                if unknown:
                    raise ValueError(f"{where}: unknown strategy {unknown} (strategies: {', '.join(STRATEGY_NAMES)})")
                if any(w < 0 for w in weights.values()):
                    raise ValueError(f"{where}: weights must not be negative")
                if weights and set(weights) == set(STRATEGY_NAMES) and not any(weights.values()):
                    raise ValueError(f"{where}: every weight is 0, which would score every strategy 0")
        unknown_regimes = sorted(set(self.regime) - set(REGIMES))
        if unknown_regimes:
            raise ValueError(f"strategy_weights.regime: unknown regime {unknown_regimes} (regimes: {', '.join(REGIMES)})")
        return self
