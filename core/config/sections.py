"""The sections of the config file, one pydantic model each, with their own sanity rules.

Kept apart from `core.config.model` (which assembles, merges and loads them) so each file stays readable;
import them from `core.config.model`, which re-exports every name here.
"""
from __future__ import annotations

import re
from types import UnionType
from typing import Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Section(BaseModel):
    # NaN/Infinity (which Python's json accepts) slipped past every bound with a misleading message
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, v, info):
        # pydantic reads true as 1: `"lot_size": true` would have traded 1 lot
        if isinstance(v, bool) and info.field_name and _numeric(cls.model_fields[info.field_name].annotation):
            raise ValueError(f"{str(v).lower()} is not a number")
        return v


def _numeric(ann) -> bool:
    if ann in (int, float):
        return True
    return get_origin(ann) in (Union, UnionType) and any(a in (int, float) for a in get_args(ann))


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


_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class SessionDefinition(_Section):
    timezone: str
    start: str
    end: str

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name like 'Europe/London')") from None
        return v

    @field_validator("start", "end")
    @classmethod
    def _time(cls, v: str) -> str:
        if not _HHMM.match(v):
            raise ValueError(f"time {v!r} must be HH:MM (24h)")
        return v


class Sessions(_Section):
    definitions: dict[str, SessionDefinition]
    allowed: list[str]
    block_open_minutes: dict[str, int] = Field(default_factory=dict)
    allow_outside_sessions: bool = False

    @model_validator(mode="after")
    def _known(self) -> Sessions:
        unknown = [s for s in [*self.allowed, *self.block_open_minutes] if s not in self.definitions]
        if unknown:
            raise ValueError(f"sessions {sorted(set(unknown))} are not defined in sessions.definitions")
        if any(m < 0 or m > 240 for m in self.block_open_minutes.values()):
            raise ValueError("block_open_minutes must be between 0 and 240")
        return self


class News(_Section):
    enabled: bool = True
    calendar_path: str | None = None
    blackout_minutes_before: int = Field(ge=0, le=1440)
    blackout_minutes_after: int = Field(ge=0, le=1440)
    impacts: list[Literal["High", "Medium", "Low", "Holiday"]]
    cache_seconds: float = Field(ge=0)
    # the live weekly calendar (Forex Factory JSON): fetched on a schedule, cached on disk for offline restarts;
    # None keeps the recorded `calendar_path` only (offline runs, tests, backtests)
    live_url: str | None = None
    live_refresh_minutes: float = Field(default=30, gt=0, le=1440)
    live_cache_path: str = "data/news_calendar_live.json"
    live_timeout_seconds: float = Field(default=10, gt=0, le=120)


Fallback = Literal["BLOCK_TRADE", "use_session_vwap", "skip_confirmation", "skip_news_check", "skip_check"]


class SourceQuality(_Section):
    required: bool
    max_age_minutes: float = Field(gt=0)
    min_candles: int | None = Field(default=None, ge=1)
    fallback: Fallback


class OrderFlowFeeds(_Section):
    """Where order flow comes from (global). An exchange via ccxt for mapped crypto symbols (public trades
    and the book top, no keys), MT5 tick flags for `mt5_tick_symbols`, recorded trade files in paper mode."""

    enabled: bool = True
    exchange: str = "binance"
    api_url: str | None = None  # replaces ccxt's urls['api']['public'] (a local stand-in in tests, a proxy)
    symbols: dict[str, str] = Field(default_factory=dict)  # broker symbol -> exchange symbol, BTCUSDc -> BTC/USDT
    window_seconds: float = Field(default=300, gt=0, le=3600)
    refresh_seconds: float = Field(default=10, gt=0, le=3600)
    timeout_seconds: float = Field(default=10, gt=0, le=120)
    trades_limit: int = Field(default=500, ge=10, le=1000)
    book_levels: int = Field(default=10, ge=1, le=100)
    large_trade_quantile: float = Field(default=0.9, gt=0, lt=1)
    max_clock_skew_seconds: float = Field(default=5, gt=0, le=600)
    max_trades_kept: int = Field(default=20000, ge=100, le=200000)  # per symbol: bounds memory
    mt5_tick_symbols: list[str] = Field(default_factory=list)  # only where the broker sends real buy/sell flags
    recorded: dict[str, str] = Field(default_factory=dict)  # paper mode: broker symbol -> trades file


class DataQuality(_Section):
    mt5_candles: SourceQuality
    vwap: SourceQuality
    orderflow: SourceQuality
    news_calendar: SourceQuality


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


ErrorAction = Literal[
    "skip_trade", "retry_connection", "retry_with_slippage", "use_last_known_data", "retry_execution", "log_error"
]


class ErrorPolicy(_Section):
    action: ErrorAction
    max_retries: int = Field(default=0, ge=0, le=20)
    retry_interval: float = Field(default=0, ge=0, le=600)
    fallback: str | None = None
    notify_user: bool = False
    reason: str = ""
    max_slippage_pct: float | None = Field(default=None, gt=0, le=5)
    max_age_minutes: float | None = Field(default=None, gt=0)
    continue_monitoring: bool = False


Severity = Literal["critical", "high", "medium", "info"]


class ErrorSeverityConfig(_Section):
    map: dict[str, Severity]
    default: Severity = "medium"
    stale_minutes_high: float = Field(gt=0)
    stale_minutes_medium: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> ErrorSeverityConfig:
        if self.stale_minutes_medium >= self.stale_minutes_high:
            raise ValueError("stale_minutes_medium must be below stale_minutes_high")
        return self


class Alerts(_Section):
    routing: dict[Severity, list[str]]
    dedup_window_seconds: float = Field(ge=0)
    sink_max_retries: int = Field(ge=0, le=20)
    sink_backoff_seconds: float = Field(ge=0, le=60)


class Execution(_Section):
    auto_execute_enabled: bool = False
    auto_execute_confidence_threshold: float = Field(ge=0, le=100)
    lot_size: float = Field(gt=0, le=100)
    max_entry_slippage_pct: float = Field(gt=0, le=5)
    proposal_expiry_seconds: float = Field(gt=0, le=86400)
    magic_number: int = Field(gt=0, lt=2**63)
    deviation_points: int = Field(ge=0, le=10000)
    approval_mode: Literal["manual", "auto"] = "manual"
    # open positions at once on one range (two strategies off one card are one range); re-entry rules apply too
    max_positions_per_range: int = Field(default=1, ge=1, le=100)


class Exits(_Section):
    breakeven_trigger_r: float = Field(gt=0, le=10)
    breakeven_cost_points: float = Field(ge=0)
    max_minutes_in_trade: float = Field(gt=0)
    stall_minutes: float = Field(gt=0)
    reentry_cooldown_minutes: float = Field(ge=0)
    max_reentries_per_range: int = Field(ge=0, le=100)


class Monitor(_Section):
    interval_seconds: float = Field(ge=0.05, le=3600)
    tick_driven: bool = False


class KillSwitch(_Section):
    enabled: bool = True
    emergency_disable: bool = False
    max_errors_per_hour: int = Field(ge=1)
    max_critical_errors_per_hour: int = Field(ge=1)


class Performance(_Section):
    slow_operation_ms: float = Field(gt=0)


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


class PaperBrokerConfig(_Section):
    db_path: str = "data/paper_broker.sqlite"
    slippage_points: float = Field(default=0, ge=0)
    commission_per_lot: float = Field(default=0, ge=0)
    start_balance: float = Field(default=10000, gt=0)
    speed: float = Field(default=60, gt=0)


class MT5Config(_Section):
    path: str | None = None
    timeout_ms: int = Field(default=10000, ge=100)
    # MT5 reports server time; None = learn it from fresh ticks (see docs/brokers.md)
    server_utc_offset_hours: float | None = Field(default=None, ge=-14, le=14)


class Broker(_Section):
    kind: Literal["paper", "mt5"] = "paper"
    paper: PaperBrokerConfig = PaperBrokerConfig()
    mt5: MT5Config = MT5Config()


class Store(_Section):
    path: str = "data/moneybot.sqlite"


class Mcp(_Section):
    """The MCP front door (bot/mcp_server). Tokens are secrets: MONEYBOT_MCP_TOKEN / _VIEWER_TOKEN in env/.env."""

    enabled: bool = False  # serve MCP over HTTP inside `moneybot run` (and take queued standalone proposals)
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    access_role: Literal["viewer", "trader"] = "trader"  # the role MONEYBOT_MCP_TOKEN grants
    stdio_role: Literal["viewer", "trader"] = "trader"  # stdio has no token: its launcher owns the .env
    rate_limit_per_minute: int = Field(default=60, ge=1)
    max_request_bytes: int = Field(default=262144, ge=1024)  # a 100k-char argument is still a tool error
    allowed_origins: list[str] = Field(default_factory=list)  # empty: http://127.0.0.1:PORT, http://localhost:PORT
    allowed_hosts: list[str] = Field(default_factory=list)  # Host headers besides 127.0.0.1/localhost (a proxy's name)


class Telegram(_Section):
    """Telegram settings that are not secrets (the token stays in .env). `base_url`: a self-hosted Bot API
    server's endpoint (e.g. http://127.0.0.1:8081/bot); None is api.telegram.org. The environment's
    MONEYBOT_TELEGRAM_BASE_URL, when set, wins."""

    base_url: str | None = None


class SymbolSpec(_Section):
    description: str = ""
    digits: int = Field(ge=0, le=10)
    point: float = Field(gt=0)
    contract_size: float = Field(gt=0)
    volume_min: float = Field(gt=0)
    volume_step: float = Field(gt=0)
    stops_level_points: int = Field(ge=0)
    default_spread_points: int = Field(ge=0)
    currencies: list[str] = Field(default_factory=list)
    data: dict[str, str] = Field(default_factory=dict)
    data_tz_offset_hours: float = Field(default=0, ge=-14, le=14)
    # the data's server clock zone ('ny_close' or IANA); when set it replaces the fixed offset above
    data_timezone: str | None = None
    trades_weekends: bool = False

    @field_validator("data_timezone")
    @classmethod
    def _server_zone(cls, v: str | None) -> str | None:
        from core.domain.server_time import check_server_timezone

        return None if v is None else check_server_timezone(v)

    @field_validator("data")
    @classmethod
    def _data_timeframes(cls, v: dict[str, str]) -> dict[str, str]:
        from core.domain.timeframes import Timeframe

        # normalise 'm5'/'5m' to 'M5' here, so MarketData never meets a timeframe it cannot parse
        out: dict[str, str] = {}
        for tf, path in v.items():
            name = Timeframe.parse(tf).value
            if name in out:
                raise ValueError(f"timeframe {name} is listed twice")
            out[name] = path
        return out
