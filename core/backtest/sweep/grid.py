"""The search space of a sweep: a JSON grid over config parameters, validated before any CPU is spent.

A grid file names config parameters by their dotted path in the per-symbol config (the sections of
`core.config.model.TradingConfig`: range detection, filters, strategy settings, exit rules) and gives
each one a list of values or an inclusive `{"start", "stop", "step"}` span:

    {"params": {"range_detection.touch_tolerance_atr": [0.2, 0.3],
                "exits.breakeven_trigger_r": {"start": 0.5, "stop": 1.5, "step": 0.5}},
     "min_trades": 20}

Why paths into the real config rather than a sweep-only parameter list: a task is then nothing but a
normal backtest with the symbol's config overrides changed (`apply_params`), so a sweep result can be
reproduced with `moneybot backtest --set PATH=VALUE` and no parameter can mean something else here.
A wrong key, an empty list, an empty span or a value the config would reject is one clear line.
"""
from __future__ import annotations

import difflib
import itertools
import json
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.config.model import GLOBAL_ONLY, AppConfig, deep_merge
from core.domain.exceptions import UserFacingError

Scalar = bool | int | float | str
MAX_COMBINATIONS = 10_000


class Span(BaseModel):
    """An inclusive arithmetic range of values (floats rounded to 10 digits so 0.1 steps stay exact)."""

    model_config = ConfigDict(extra="forbid")
    start: float
    stop: float
    step: float = Field(gt=0)

    def values(self) -> list[float | int]:
        if not all(math.isfinite(x) for x in (self.start, self.stop, self.step)):
            raise ValueError("start, stop and step must be finite numbers")
        if self.stop < self.start:
            raise ValueError(f"empty range: stop {self.stop:g} is below start {self.start:g}")
        n = int(math.floor((self.stop - self.start) / self.step + 1e-9)) + 1
        vals = [round(self.start + i * self.step, 10) for i in range(n)]
        if all(float(v).is_integer() for v in (self.start, self.stop, self.step)):
            return [int(v) for v in vals]
        return vals


class GridFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    params: dict[str, list[Scalar] | Span] = Field(min_length=1)
    min_trades: int = Field(default=20, ge=1, description="fewer in-sample trades and a parameter set cannot win")
    strategy: str = "auto"

    @field_validator("params")
    @classmethod
    def _non_empty(cls, v: dict[str, list[Scalar] | Span]) -> dict[str, list[Scalar] | Span]:
        for key, vals in v.items():
            if isinstance(vals, list) and not vals:
                raise ValueError(f"'{key}' has an empty list of values")
            if isinstance(vals, Span):
                try:
                    vals.values()
                except ValueError as e:
                    raise ValueError(f"'{key}': {e}") from None
        return v

    def values(self) -> dict[str, list[Scalar]]:
        return {k: (v.values() if isinstance(v, Span) else list(dict.fromkeys(v))) for k, v in self.params.items()}

    def combinations(self) -> list[dict[str, Scalar]]:
        vals = self.values()
        keys = list(vals)
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(vals[k] for k in keys))]


def _first_error(e: ValidationError) -> str:
    errs = e.errors()
    # a {start, stop, step} value is also tried as a list: that branch's "not a list" is not the news
    err = next((x for x in errs if x.get("type") != "list_type"), errs[0])
    where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("list[union[bool,int,float,str]]", "Span"))
    return f"{where}: {err.get('msg', '')}".strip(": ")


def load_grid(path: str | Path) -> GridFile:
    """Read and validate a grid file; every problem is a UserFacingError of one line."""
    p = Path(path)
    try:
        raw = json.loads(p.read_text())
    except OSError as e:
        raise UserFacingError(f"cannot read the grid file {p}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise UserFacingError(f"{p} is not valid JSON (line {e.lineno}, column {e.colno}): {e.msg}") from None
    return parse_grid(raw, source=str(p))


def parse_grid(raw: Any, source: str = "grid") -> GridFile:
    try:
        return GridFile.model_validate(raw)
    except ValidationError as e:
        raise UserFacingError(f"{source}: {_first_error(e)}") from None


def _leaf(tree: dict[str, Any], path: str, what: str = "grid key") -> None:
    """Raise UserFacingError unless `path` names one setting (not a whole section) of the symbol config."""
    node: Any = tree
    done: list[str] = []
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            if not isinstance(node, dict):
                raise UserFacingError(f"unknown {what} '{path}': '{'.'.join(done)}' is a single setting")
            near = difflib.get_close_matches(part, list(node), n=1, cutoff=0.6)
            hint = f"; did you mean '{'.'.join([*done, near[0]])}'?" if near else ""
            where = f"in '{'.'.join(done)}'" if done else "in the config"
            raise UserFacingError(f"unknown {what} '{path}': no '{part}' {where}{hint}")
        node = node[part]
        done.append(part)
    if isinstance(node, dict):
        raise UserFacingError(f"{what} '{path}' is a whole section; name one of its settings "
                              f"(e.g. '{path}.{next(iter(node), '...')}')")


def _nested(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, value in params.items():
        node = out
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def apply_params(cfg: AppConfig, symbol: str, params: dict[str, Any]) -> AppConfig:
    """`cfg` with `params` (dotted paths) merged into the symbol's overrides: what one sweep task runs.

    Symbol overrides, not the defaults, because an existing override for the symbol would otherwise
    mask the swept value. With no params the config is returned unchanged (same object, same version).
    """
    if not params:
        return cfg
    raw = cfg.model_dump(mode="json")
    overrides = dict(raw.get("symbol_overrides") or {})
    overrides[symbol] = deep_merge(overrides.get(symbol) or {}, _nested(params))
    raw["symbol_overrides"] = overrides
    return AppConfig.model_validate(raw)


def check_grid(cfg: AppConfig, symbol: str, grid: GridFile) -> list[dict[str, Scalar]]:
    """Every key names a per-symbol setting and every value is one the config accepts; returns the combinations."""
    tree = {k: v for k, v in cfg.for_symbol(symbol).model_dump(mode="json").items() if k not in GLOBAL_ONLY}
    for key in grid.params:
        _leaf(tree, key)
    for key, vals in grid.values().items():
        for v in vals:
            try:
                apply_params(cfg, symbol, {key: v}).for_symbol(symbol)
            except ValidationError as e:
                raise UserFacingError(f"grid value {v!r} for '{key}' is not accepted by the config: "
                                      f"{e.errors()[0].get('msg', '')}") from None
    if grid.strategy != "auto" and grid.strategy not in cfg.strategy_rr:
        raise UserFacingError(f"unknown strategy '{grid.strategy}' in the grid (use auto or one of: "
                              f"{', '.join(sorted(cfg.strategy_rr))})")
    n = math.prod(len(v) for v in grid.values().values())
    if n > MAX_COMBINATIONS:
        raise UserFacingError(f"the grid has {n:,} combinations; at most {MAX_COMBINATIONS:,} are allowed")
    return grid.combinations()


def parse_set(items: list[str] | None) -> dict[str, Scalar]:
    """`--set PATH=VALUE` options (VALUE read as JSON when it parses, else as text)."""
    out: dict[str, Scalar] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UserFacingError(f"--set {item}: use --set section.setting=VALUE, e.g. --set exits.breakeven_trigger_r=1.0")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        out[key.strip()] = value
    return out


def check_params(cfg: AppConfig, symbol: str, params: dict[str, Any]) -> AppConfig:
    """Validate `--set` style params against the symbol config and return the config they give."""
    tree = {k: v for k, v in cfg.for_symbol(symbol).model_dump(mode="json").items() if k not in GLOBAL_ONLY}
    for key in params:
        _leaf(tree, key, "--set key")
    try:
        out = apply_params(cfg, symbol, params)
        out.for_symbol(symbol)
    except ValidationError as e:
        raise UserFacingError(f"--set: {_first_error(e)}") from None
    return out
