"""Configuration: one JSON file of defaults plus per-symbol overrides, validated up front.

Why so strict: a bad threshold in a live trading bot is a silent money leak. Validation therefore
collects *every* problem with its JSON path in one pass (a trader fixing a config should not play
whack-a-mole), and each symbol's merged view is validated too, so an override cannot smuggle in an
invalid value. Secrets never live here: see `core.settings`.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config" / "range_scalping.json"
SEVERITIES = ("critical", "high", "medium", "info")


def market_data_dir() -> Path:
    """Where the shared real market data lives (overridable for other checkouts)."""
    env = os.environ.get("MONEYBOT_MARKET_DATA")
    return Path(env) if env else (PROJECT_ROOT.parent / "shared" / "data" / "market")


def resolve_path(text: str) -> Path:
    """Expand `${MARKET_DATA}` and make relative paths relative to the project root, not the cwd."""
    expanded = text.replace("${MARKET_DATA}", str(market_data_dir()))
    p = Path(expanded).expanduser()
    return p if p.is_absolute() else PROJECT_ROOT / p


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
        from core.timeframes import Timeframe

        return Timeframe.parse(v).value

    @field_validator("nested_timeframes")
    @classmethod
    def _tfs(cls, v: list[str]) -> list[str]:
        from core.timeframes import Timeframe

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


Fallback = Literal["BLOCK_TRADE", "use_session_vwap", "skip_confirmation", "skip_news_check", "skip_check"]


class SourceQuality(_Section):
    required: bool
    max_age_minutes: float = Field(gt=0)
    min_candles: int | None = Field(default=None, ge=1)
    fallback: Fallback


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
    trades_weekends: bool = False

    @field_validator("data")
    @classmethod
    def _data_timeframes(cls, v: dict[str, str]) -> dict[str, str]:
        from core.timeframes import Timeframe

        # normalise 'm5'/'5m' to 'M5' here, so MarketData never meets a timeframe it cannot parse
        out: dict[str, str] = {}
        for tf, path in v.items():
            name = Timeframe.parse(tf).value
            if name in out:
                raise ValueError(f"timeframe {name} is listed twice")
            out[name] = path
        return out


class TradingConfig(_Section):
    """Every section a symbol may override. `AppConfig.for_symbol` returns one of these."""

    strategy_rr: dict[str, RiskReward]
    entry_filters: EntryFilters
    effective_atr: EffectiveATR
    range_detection: RangeDetection
    range_width: RangeWidth
    range_invalidation: RangeInvalidation
    sessions: Sessions
    news: News
    data_quality: DataQuality
    activity: Activity
    confluence: Confluence
    false_range: FalseRange
    error_handling: dict[str, ErrorPolicy]
    error_severity: ErrorSeverityConfig
    alerts: Alerts
    execution: Execution
    exits: Exits
    monitor: Monitor
    kill_switch: KillSwitch
    performance: Performance


GLOBAL_ONLY = ("symbols", "symbol_overrides", "broker", "store")


class AppConfig(TradingConfig):
    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))

    symbols: dict[str, SymbolSpec]
    symbol_overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    broker: Broker = Broker()
    store: Store = Store()

    @cached_property
    def version(self) -> str:
        """SHA-256 of the canonical config: any change to any value yields a new version."""
        canon = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()

    @property
    def short_version(self) -> str:
        return self.version[:12]

    def resolve_symbol(self, text: str) -> str | None:
        """Case-insensitive symbol lookup: traders type 'btcusdc' on phones."""
        want = text.strip().lower()
        for name in self.symbols:
            if name.lower() == want:
                return name
        return None

    def suggest_symbols(self, text: str, n: int = 3) -> list[str]:
        import difflib

        names = list(self.symbols)
        lowered = {s.lower(): s for s in names}
        hits = difflib.get_close_matches(text.strip().lower(), list(lowered), n=n, cutoff=0.6)
        prefix = [s for s in names if s.lower().startswith(text.strip().lower()[:3])] if text.strip() else []
        out = [lowered[h] for h in hits] + [p for p in prefix if p not in hits]
        return list(dict.fromkeys(out))[:n] or names[:n]

    def for_symbol(self, symbol: str) -> TradingConfig:
        """The effective config for one symbol: defaults deep-merged with its overrides."""
        cache = self.__dict__.setdefault("_per_symbol", {})
        if symbol not in cache:
            base = {k: v for k, v in self.model_dump(mode="json").items() if k not in GLOBAL_ONLY}
            merged = deep_merge(base, self.symbol_overrides.get(symbol, {}))
            cache[symbol] = TradingConfig.model_validate(merged)
        return cache[symbol]

    def symbol(self, symbol: str) -> SymbolSpec:
        return self.symbols[symbol]


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class ConfigIssue(BaseModel):
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(Exception):
    """Raised with every problem found, each with its JSON path."""

    def __init__(self, source: str, issues: list[ConfigIssue]):
        self.source = source
        self.issues = issues
        lines = "\n".join(f"  - {i}" for i in issues)
        super().__init__(f"config {source} has {len(issues)} problem(s):\n{lines}")


def _issues_from(err: ValidationError, prefix: str = "") -> list[ConfigIssue]:
    out = []
    for e in err.errors():
        parts = [str(p) for p in e["loc"] if p != "[key]"]  # pydantic marks bad dict keys with "[key]"
        path = ".".join(p for p in [prefix, *parts] if p)
        msg = e["msg"].removeprefix("Value error, ")
        out.append(ConfigIssue(path=path, message=msg))
    return out


def validate_config_dict(raw: Any) -> tuple[AppConfig | None, list[ConfigIssue]]:
    """Validate the defaults and every symbol's merged view; return all issues at once."""
    if not isinstance(raw, dict):
        return None, [ConfigIssue(path="", message="the config must be a JSON object")]
    issues: list[ConfigIssue] = []
    cfg: AppConfig | None = None
    try:
        cfg = AppConfig.model_validate(raw)
    except ValidationError as e:
        issues.extend(_issues_from(e))
    overrides = raw.get("symbol_overrides") or {}
    symbols = raw.get("symbols") or {}
    if isinstance(overrides, dict):
        base = {k: v for k, v in raw.items() if k not in GLOBAL_ONLY}
        for sym, ov in overrides.items():
            if isinstance(symbols, dict) and sym not in symbols:
                known = ", ".join(symbols) or "none"
                issues.append(ConfigIssue(path=f"symbol_overrides.{sym}", message=f"unknown symbol (known: {known})"))
                continue
            if not isinstance(ov, dict):
                continue  # AppConfig validation above already reported it
            bad_keys = [k for k in ov if k in GLOBAL_ONLY or k not in TradingConfig.model_fields]
            for k in bad_keys:
                issues.append(ConfigIssue(path=f"symbol_overrides.{sym}.{k}", message="cannot be overridden per symbol"))
            try:
                TradingConfig.model_validate(deep_merge(base, {k: v for k, v in ov.items() if k not in bad_keys}))
            except ValidationError as e:
                seen = {(i.path, i.message) for i in issues}
                for issue in _issues_from(e, prefix=f"symbol_overrides.{sym}"):
                    # report only problems the override introduced, not the base's again
                    # (strip the prefix rather than split on dots: broker symbols like "EURUSD.m" have dots)
                    base_path = issue.path.removeprefix(f"symbol_overrides.{sym}").removeprefix(".")
                    if (base_path, issue.message) not in seen:
                        issues.append(issue)
    return (cfg if not issues else None), issues


def load_config(path: str | Path | None = None) -> AppConfig:
    """Load and validate a config file, raising ConfigError that names every problem."""
    p = Path(path) if path else Path(os.environ.get("MONEYBOT_CONFIG", DEFAULT_CONFIG_PATH))
    source = str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, [ConfigIssue(path="", message="file not found")]) from None
    except OSError as e:
        raise ConfigError(source, [ConfigIssue(path="", message=f"cannot read file: {e.strerror}")]) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(source, [ConfigIssue(path="", message=f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}")]) from None
    cfg, issues = validate_config_dict(raw)
    if issues or cfg is None:
        raise ConfigError(source, issues)
    log.info("config loaded from %s, config_version=%s", source, cfg.short_version)
    return cfg
