"""Configuration models: the whole app config (`AppConfig`) and the per-symbol view (`TradingConfig`).

One JSON file holds defaults plus per-symbol overrides; `AppConfig.for_symbol` deep-merges them and
validates the result. Loading and reporting problems is `core.config.loading`; the sections are in
their topic modules; file locations are `core.config.paths`. Secrets never live here: see
`core.config.settings`.
"""
from __future__ import annotations

import copy
import hashlib
import json
from functools import cached_property
from typing import Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from core.config.analysis import (
    Activity,
    Confluence,
    EffectiveATR,
    EntryFilters,
    FalseRange,
    RangeDetection,
    RangeInvalidation,
    RangeWidth,
    RiskReward,
    StrategyWeights,
)
from core.config.deployment import Broker, Mcp, Store, Telegram
from core.config.market import DataQuality, News, OrderFlowFeeds, Sessions, SymbolSpec
from core.config.ops import Alerts, ErrorPolicy, ErrorSeverityConfig, Performance
from core.config.sections import _Section
from core.config.trading import Execution, Exits, KillSwitch, Monitor
from core.domain.exceptions import UnknownSymbolError
from core.domain.models import STRATEGY_NAMES

SEVERITIES = ("critical", "high", "medium", "info")


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
    strategy_weights: StrategyWeights = Field(default_factory=StrategyWeights)

    @field_validator("strategy_rr")
    @classmethod
    def _known_strategies(cls, v: dict[str, RiskReward]) -> dict[str, RiskReward]:
        # a typo'd name was accepted, left the real strategy without its band and was offered by --strategy
        import difflib

        unknown = [k for k in v if k not in STRATEGY_NAMES]
        if unknown:
            names = ", ".join(sorted(STRATEGY_NAMES))
            near = difflib.get_close_matches(unknown[0], list(STRATEGY_NAMES), n=1, cutoff=0.75)
            hint = f"; did you mean '{near[0]}'?" if len(unknown) == 1 and near else ""
            raise ValueError(f"unknown strategy {', '.join(repr(k) for k in unknown)}{hint} (strategies: {names})")
        return v

    @model_validator(mode="after")
    def _weighted_sessions_exist(self) -> TradingConfig:
        known = set(self.sessions.definitions) | {"off_hours"}
        unknown = sorted(set(self.strategy_weights.session) - known)
        if unknown:
            raise ValueError(f"strategy_weights.session: unknown session {unknown} (sessions: {', '.join(sorted(known))})")
        return self


GLOBAL_ONLY = ("symbols", "symbol_overrides", "broker", "store", "mcp", "telegram", "orderflow_feeds")


class AppConfig(TradingConfig):
    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))

    symbols: dict[str, SymbolSpec]
    symbol_overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    broker: Broker = Broker()
    store: Store = Store()
    mcp: Mcp = Mcp()
    telegram: Telegram = Telegram()
    orderflow_feeds: OrderFlowFeeds = OrderFlowFeeds()

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
        """Configured symbols close to `text`, best first; only near-ties of the best one, so 'xauusd'
        suggests XAUUSDc alone rather than every *USDc symbol."""
        import difflib

        want = text.strip().lower()
        if not want:
            return []
        scored = sorted(((difflib.SequenceMatcher(None, want, s.lower()).ratio(), s) for s in self.symbols),
                        key=lambda x: -x[0])
        if not scored or scored[0][0] < 0.6:
            return []
        best = scored[0][0]
        return [s for r, s in scored if r >= 0.6 and r >= best - 0.1][:n]

    def unknown_symbol(self, text: str) -> UnknownSymbolError:
        """The trader's error for a symbol not in the config: a close match, else the list to pick from.
        The echo is short and printable: a pasted page or terminal escape codes are not repeated back."""
        shown = "".join(ch for ch in text if ch.isprintable())
        shown = shown if len(shown) <= 24 else shown[:23] + "…"
        return UnknownSymbolError(shown, self.suggest_symbols(text), known=list(self.symbols))

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


