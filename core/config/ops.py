"""The config sections about errors and alerts: what to do per error kind, how severe each is, where alerts
go, and when an operation counts as slow. Read by `core.ops` (ErrorHandler, alerts)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from core.config.sections import _Section

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


class Performance(_Section):
    slow_operation_ms: float = Field(gt=0)
