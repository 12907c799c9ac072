"""The config sections that govern trades: execution (lot, slippage, approval), exits, the monitor loop and
the kill switch. `core.config.model.TradingConfig` assembles them; a symbol may override each."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from core.config.sections import _Section


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
