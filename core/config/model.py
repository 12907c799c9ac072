"""Configuration: one JSON file of defaults plus per-symbol overrides, validated up front.

Why so strict: a bad threshold in a live trading bot is a silent money leak. Validation therefore
collects *every* problem with its JSON path in one pass (a trader fixing a config should not play
whack-a-mole), and each symbol's merged view is validated too, so an override cannot smuggle in an
invalid value. Secrets never live here: see `core.config.settings`.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
from functools import cached_property
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# re-exported: callers import the section models from here
from core.config.sections import (  # noqa: F401
    Activity,
    Alerts,
    Broker,
    Confluence,
    DataQuality,
    EffectiveATR,
    EntryFilters,
    ErrorAction,
    ErrorPolicy,
    ErrorSeverityConfig,
    Execution,
    Exits,
    Fallback,
    FalseRange,
    KillSwitch,
    Mcp,
    Monitor,
    MT5Config,
    News,
    OrderFlowFeeds,
    PaperBrokerConfig,
    Performance,
    RangeDetection,
    RangeInvalidation,
    RangeWidth,
    RiskReward,
    SessionDefinition,
    Sessions,
    Severity,
    SourceQuality,
    Store,
    StrategyWeights,
    SymbolSpec,
    Telegram,
    _Section,
)
from core.domain.exceptions import UnknownSymbolError
from core.domain.models import STRATEGY_NAMES

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config" / "range_scalping.json"
SEVERITIES = ("critical", "high", "medium", "info")


def deployment_env(name: str) -> str | None:
    """A deployment setting (MONEYBOT_CONFIG, MONEYBOT_MARKET_DATA) from the environment, else from the
    `.env` in the folder MoneyBot starts from, like the secrets: one file to edit, not two places."""
    value = os.environ.get(name)
    if value:
        return value
    env_file = Path(".env")
    if not env_file.is_file():
        return None
    try:
        from dotenv import dotenv_values

        value = dotenv_values(env_file, encoding="utf-8").get(name)
    except (OSError, UnicodeDecodeError, ValueError):  # the secrets loader reports a broken .env in words
        return None
    return (value.strip() or None) if isinstance(value, str) else None


def market_data_dir() -> Path:
    """Where the shared real market data lives (overridable for other checkouts)."""
    env = deployment_env("MONEYBOT_MARKET_DATA")
    return Path(env) if env else (PROJECT_ROOT.parent / "shared" / "data" / "market")


def resolve_path(text: str) -> Path:
    """Expand `${MARKET_DATA}` and make relative paths relative to the project root, not the cwd."""
    expanded = text.replace("${MARKET_DATA}", str(market_data_dir())) if "${MARKET_DATA}" in text else text
    p = Path(expanded).expanduser()
    return p if p.is_absolute() else PROJECT_ROOT / p


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


class ConfigIssue(BaseModel):
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


MAX_CONFIG_BYTES = 1_000_000  # a config is a few KB; a bigger file is the wrong file (or an attack on the parser)
MAX_PATH_CHARS = 4096  # Linux PATH_MAX: a longer path cannot be opened anyway


def shown_path(text: str, limit: int = 160) -> str:
    """A path as echoed in one error line: printable and at most `limit` characters (middle elided)."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(text))
    return text if len(text) <= limit else f"{text[:limit // 2]}…{text[-(limit // 2):]} ({len(text)} characters)"


class ConfigError(Exception):
    """Raised with every problem found, each with its JSON path."""

    def __init__(self, source: str, issues: list[ConfigIssue]):
        self.source = source
        self.issues = issues
        source = shown_path(source)
        if len(issues) == 1:  # one problem, one line
            super().__init__(f"config {source}: {issues[0]}")
            return
        lines = "\n".join(f"  - {i}" for i in issues)
        super().__init__(f"config {source} has {len(issues)} problem(s):\n{lines}")


def _issues_from(err: ValidationError, prefix: str = "", root: type[BaseModel] | None = None) -> list[ConfigIssue]:
    out = []
    for e in err.errors():
        parts = [str(p) for p in e["loc"] if p != "[key]"]  # pydantic marks bad dict keys with "[key]"
        path = ".".join(p for p in [prefix, *parts] if p)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden" and parts:
            msg = _unknown_key(root or AppConfig, parts)
        out.append(ConfigIssue(path=path, message=msg))
    return out


def _unknown_key(root: type[BaseModel], parts: list[str]) -> str:
    """Pydantic's "Extra inputs are not permitted" for a typo'd key: name the key that was probably meant,
    or, for a token or password, where secrets do go."""
    import difflib

    from core.config.settings import Secrets

    key = parts[-1]
    for name in (key, f"{parts[-2]}_{key}" if len(parts) > 1 else key):
        if name in Secrets.model_fields:
            return f"secrets are not read from the config: put MONEYBOT_{name.upper()} in .env"
    model = _section_at(root, parts[:-1])
    near = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.75) if model else []
    return f"unknown setting; did you mean '{near[0]}'?" if near else "unknown setting (no such key in this section)"


def _section_at(model: type[BaseModel], parts: list[str]) -> type[BaseModel] | None:
    """The section model reached by a JSON path (dict values and optionals unwrapped), or None."""
    i = 0
    while i < len(parts):
        field = model.model_fields.get(parts[i])
        if field is None:
            return None
        ann, i = field.annotation, i + 1
        while True:
            origin = get_origin(ann)
            if origin is dict:
                ann, i = get_args(ann)[1], i + 1  # a dict key (a symbol, a strategy) is one path part
            elif origin in (Union, UnionType):
                ann = next((a for a in get_args(ann) if a is not type(None)), None)
            else:
                break
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)) or i > len(parts):
            return None
        model = ann
    return model


def _lot_issues(cfg: AppConfig, raw: dict[str, Any]) -> list[ConfigIssue]:
    """A lot the broker cannot take as is: `order_checks.normalise_lot` would send volume_min or the nearest
    step instead (0.005 went out as 0.01, twice the risk asked for), so say it here, once per JSON path."""
    overrides = raw.get("symbol_overrides") or {}
    found: dict[str, str] = {}
    for sym, spec in cfg.symbols.items():
        try:
            lot = cfg.for_symbol(sym).execution.lot_size
        except ValidationError:  # a broken override: already reported with its own path
            continue
        ex = (overrides.get(sym) or {}).get("execution")
        path = (f"symbol_overrides.{sym}.execution.lot_size" if isinstance(ex, dict) and "lot_size" in ex
                else "execution.lot_size")
        steps = lot / spec.volume_step
        if lot < spec.volume_min * (1 - 1e-9):
            msg = (f"{lot:g} lot is below {sym}'s volume_min {spec.volume_min:g}: the order would go out as "
                   f"{spec.volume_min:g} lot")
        elif abs(steps - round(steps)) > 1e-6:
            msg = (f"{lot:g} lot is not a multiple of {sym}'s volume_step {spec.volume_step:g}: the order would "
                   f"go out as {round(steps) * spec.volume_step:g} lot")
        else:
            continue
        found.setdefault(path, msg)
    return [ConfigIssue(path=p, message=m) for p, m in found.items()]


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
                same = [s for s in symbols if s.lower() == str(sym).lower()]
                known = ", ".join(symbols) or "none"
                msg = (f"unknown symbol; did you mean '{same[0]}'? (names are case-sensitive)" if same
                       else f"unknown symbol (known: {known})")
                issues.append(ConfigIssue(path=f"symbol_overrides.{sym}", message=msg))
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
                for issue in _issues_from(e, prefix=f"symbol_overrides.{sym}", root=TradingConfig):
                    # report only problems the override introduced, not the base's again
                    # (strip the prefix rather than split on dots: broker symbols like "EURUSD.m" have dots)
                    base_path = issue.path.removeprefix(f"symbol_overrides.{sym}").removeprefix(".")
                    if (base_path, issue.message) not in seen:
                        issues.append(issue)
    if cfg is not None:
        issues.extend(_lot_issues(cfg, raw))
        paths = (cfg.store.path, cfg.broker.paper.db_path)
        if ":memory:" not in paths and len({resolve_path(p).resolve() for p in paths}) == 1:
            issues.append(ConfigIssue(path="broker.paper.db_path", message="is the same file as store.path: give the "
                                      "paper account its own file, e.g. data/paper_broker.sqlite"))
    return (cfg if not issues else None), issues


def load_config(path: str | Path | None = None) -> AppConfig:
    """Load and validate a config file, raising ConfigError that names every problem."""
    p = Path(path) if path else Path(deployment_env("MONEYBOT_CONFIG") or DEFAULT_CONFIG_PATH)
    source = str(p)
    if len(source) > MAX_PATH_CHARS:
        raise ConfigError(source, [ConfigIssue(path="", message=f"the path is {len(source)} characters long, more "
                                               f"than the {MAX_PATH_CHARS} a file path may have: check what was pasted")])
    try:
        if p.is_file() and p.stat().st_size > MAX_CONFIG_BYTES:  # refused before it is read or parsed
            raise ConfigError(source, [ConfigIssue(path="", message=(
                f"the file is {p.stat().st_size:,} bytes, more than the {MAX_CONFIG_BYTES:,} a config may have: "
                "is this the right file? Start from a copy of config/range_scalping.json"))])
        text = p.read_text(encoding="utf-8-sig")  # Notepad's "UTF-8 with BOM" is still UTF-8
    except FileNotFoundError:
        raise ConfigError(source, [ConfigIssue(path="", message="file not found")]) from None
    except IsADirectoryError:
        raise ConfigError(source, [ConfigIssue(path="", message="is a folder, not a file: give the path of the "
                                                                "JSON file, e.g. config/range_scalping.json")]) from None
    except PermissionError:
        raise ConfigError(source, [ConfigIssue(path="", message="cannot be read (permission denied): fix its "
                                                                "permissions, e.g. chmod 644")]) from None
    except OSError as e:
        raise ConfigError(source, [ConfigIssue(path="", message=f"cannot read file: {e.strerror or e}")]) from None
    except UnicodeDecodeError as e:  # e.g. saved as UTF-16 by Notepad
        msg = f"is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}): save it as UTF-8"
        raise ConfigError(source, [ConfigIssue(path="", message=msg)]) from None
    except ValueError:  # a NUL in the path: no file can have that name
        raise ConfigError(source, [ConfigIssue(path="", message="the path contains a character a file name cannot "
                                                                "have (such as NUL)")]) from None
    if not text.strip():
        raise ConfigError(source, [ConfigIssue(path="", message="the file is empty: start from a copy of "
                                                                "config/range_scalping.json")])
    twice: dict[int, list[tuple[str, Any, Any]]] = {}
    try:
        raw = json.loads(text, object_pairs_hook=lambda pairs: _no_twice(pairs, twice))
        cfg, issues = validate_config_dict(raw)
        issues = _written_twice(raw, twice) + issues
    except json.JSONDecodeError as e:
        raise ConfigError(source, [ConfigIssue(path="", message=f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}")]) from None
    except RecursionError:  # [[[[... thousands deep: no config is nested like that
        raise ConfigError(source, [ConfigIssue(path="", message="the JSON is nested too deeply to be a MoneyBot "
                                                                "config: start from config/range_scalping.json")]) from None
    except ValueError as e:  # a 5,000-digit integer: Python refuses to convert it (int max str digits)
        raise ConfigError(source, [ConfigIssue(path="", message=f"a number in the file cannot be read ({str(e)[:80]}): "
                                                                "numbers in a config are short")]) from None
    if issues or cfg is None:
        raise ConfigError(source, issues)
    log.info("config loaded from %s, config_version=%s", source, cfg.short_version)
    return cfg


def _no_twice(pairs: list[tuple[str, Any]], twice: dict[int, list[tuple[str, Any, Any]]]) -> dict[str, Any]:
    """json's default keeps the last of two equal keys without a word: a block pasted twice with one value
    changed silently decided which lot size traded. Note them here; `_written_twice` names their paths."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            twice.setdefault(id(out), []).append((k, out[k], v))
        out[k] = v
    return out


def _written_twice(node: Any, twice: dict[int, list[tuple[str, Any, Any]]], path: str = "") -> list[ConfigIssue]:
    if not twice or not isinstance(node, dict):
        return []
    out = []
    for key, first, second in twice.get(id(node), []):
        # numbers and switches are echoed to show which value won; text is not: it may be a pasted secret
        plain = all(v is None or isinstance(v, (bool, int, float)) for v in (first, second))
        seen = f" ({json.dumps(first)}, then {json.dumps(second)})" if plain else ""
        out.append(ConfigIssue(path=f"{path}.{key}" if path else key, message=f"written twice{seen}: keep one"))
    for key, value in node.items():
        out.extend(_written_twice(value, twice, f"{path}.{key}" if path else key))
    return out
