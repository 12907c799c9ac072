"""The config sections about the market and its data: trading sessions, the news calendar, data-quality
rules per source, order-flow feeds and the symbols themselves (contract specs and their data files).
`core.config.model` assembles them into the app config."""
from __future__ import annotations

import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from core.config.sections import _Section

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
