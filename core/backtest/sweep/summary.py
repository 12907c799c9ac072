"""Choosing parameters in-sample and judging them out-of-sample, in words a trader can act on.

The objective is stated, not implied: by default expectancy in R over the in-sample trades, and a
parameter set with fewer than `min_trades` trades cannot win (a 3-trade +2 R run is noise). The
summary puts each fold's in-sample figure beside its out-of-sample one, so a choice that only fitted
noise shows up as a collapse, and bootstraps a CI of the out-of-sample expectancy over all folds'
out-of-sample trades: when that interval spans zero the report says "no evidence of an edge".
"""
from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, Field

from core.domain.exceptions import UserFacingError
from core.store.metrics import BootstrapCI, bootstrap_mean_ci

OBJECTIVES = {
    "expectancy_r": "expectancy in R per trade",
    "net_pnl": "net profit in money",
    "profit_factor": "profit factor (gross profit / gross loss)",
    "win_rate": "win rate",
}


def check_objective(name: str) -> str:
    if name not in OBJECTIVES:
        raise UserFacingError(f"unknown objective '{name}' (use one of: {', '.join(OBJECTIVES)})")
    return name


def score(row: dict[str, Any], objective: str, min_trades: int) -> float | None:
    """The objective of one task's result; None when it may not win (too few trades, undefined figure)."""
    if row["trades"] < min_trades:
        return None
    v = row.get(objective)
    if v is None or not math.isfinite(float(v)):
        return None
    return float(v)


def best_of(rows: list[dict[str, Any]], objective: str, min_trades: int) -> dict[str, Any] | None:
    """Highest objective among rows that may win; ties go to the earlier grid point (stable, reproducible)."""
    best, best_v = None, -math.inf
    for row in sorted(rows, key=lambda r: r["combo"]):
        v = score(row, objective, min_trades)
        if v is not None and v > best_v:
            best, best_v = row, v
    return best


class FoldResult(BaseModel):
    fold: int
    is_start: float
    is_end: float
    oos_start: float
    oos_end: float
    params: dict[str, Any] | None = Field(description="best in-sample params; None if no set reached min_trades")
    is_trades: int = 0
    is_objective: float | None = None
    is_expectancy_r: float | None = None
    oos_trades: int = 0
    oos_objective: float | None = None
    oos_expectancy_r: float | None = None
    oos_net_pnl: float = 0.0
    note: str = ""


class SweepSummary(BaseModel):
    symbol: str
    objective: str
    objective_text: str
    min_trades: int
    folds: list[FoldResult]
    tasks: int
    oos_trades: int
    oos_expectancy_r_ci: BootstrapCI
    is_mean_expectancy_r: float | None = None
    verdict: str
    important_params: list[str] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict)


def verdict(ci: BootstrapCI, min_trades: int) -> str:
    if ci.trades < min_trades or ci.low is None or ci.high is None:
        return f"too few trades out of sample ({ci.trades} < {min_trades}): no conclusion"
    if ci.low <= 0.0 <= ci.high:
        return (f"no evidence of an edge: the out-of-sample expectancy CI [{ci.low:+.3f}, {ci.high:+.3f}] R "
                "spans zero")
    if ci.low > 0:
        return f"out-of-sample expectancy is positive: CI [{ci.low:+.3f}, {ci.high:+.3f}] R lies above zero"
    return f"out-of-sample expectancy is negative: CI [{ci.low:+.3f}, {ci.high:+.3f}] R lies below zero"


def importance(rows: list[dict[str, Any]], keys: list[str], objective: str, min_trades: int) -> list[str]:
    """Parameters ordered by how much the in-sample objective moves with them (range of per-value means)."""
    spread = {}
    for k in keys:
        by: dict[str, list[float]] = {}
        for r in rows:
            v = score(r, objective, min_trades)
            if v is None:
                v = r.get(objective)
            if v is not None and math.isfinite(float(v)):
                by.setdefault(repr(r["params"][k]), []).append(float(v))
        means = [sum(x) / len(x) for x in by.values() if x]
        spread[k] = (max(means) - min(means)) if len(means) > 1 else 0.0
    return sorted(keys, key=lambda k: -spread[k])


def oos_ci(oos_rows: list[dict[str, Any]]) -> BootstrapCI:
    rs = [r for row in oos_rows for r in row["r"]]
    return bootstrap_mean_ci(rs)


def too_few(n: int, min_trades: int) -> str:
    return f"too few trades ({n} < {min_trades})" if n < min_trades else ""
