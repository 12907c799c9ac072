"""Domain model shared by analysis, execution, monitoring, the store and the chat front ends.

These are pydantic models because every one of them crosses a boundary: the store persists them, the
chat layer renders them, the CLI prints them as JSON. `to_dict`/`from_dict` give an exact JSON round
trip (floats survive via repr), which is what recovery after a crash relies on.
Times are epoch seconds (UTC) as floats throughout core; only presenters format them.
"""
from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    # NaN/inf must survive to_json -> from_json (pydantic's default writes null and loses them)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, ser_json_inf_nan="constants")

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        return cls.model_validate(data)

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes):
        return cls.model_validate_json(text)


class Direction(str, Enum):
    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> int:
        return 1 if self is Direction.LONG else -1


class ExitPriority(str, Enum):
    """Exit urgency. Exits are processed in `rank` order: CRITICAL first."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        return _PRIORITY_RANK[self.value]

    # Compare by urgency (CRITICAL > HIGH > MEDIUM > LOW), not alphabetically as a plain str would.
    def __gt__(self, other):
        return self.rank < other.rank if isinstance(other, ExitPriority) else NotImplemented

    def __lt__(self, other):
        return self.rank > other.rank if isinstance(other, ExitPriority) else NotImplemented

    def __ge__(self, other):
        return self.rank <= other.rank if isinstance(other, ExitPriority) else NotImplemented

    def __le__(self, other):
        return self.rank >= other.rank if isinstance(other, ExitPriority) else NotImplemented


_PRIORITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}

RangeType = Literal["session", "previous_day", "dynamic"]
ExpansionState = Literal["contracting", "stable", "expanding"]


class _Frozen(_Model):
    """A value that is replaced, never edited: the store keeps a range's JSON while the trade holds the same
    object (`core.store.trades`), so an assignment to a field must fail rather than go unsaved."""

    model_config = ConfigDict(**_Model.model_config, frozen=True)


class CriticalGapZones(_Frozen):
    """The edge bands where range-scalp entries are allowed (fades happen at the edges, not mid-range)."""

    upper_zone_start: float
    upper_zone_end: float
    lower_zone_start: float
    lower_zone_end: float

    def zone_of(self, price: float) -> Literal["upper", "lower"] | None:
        if self.upper_zone_start <= price <= self.upper_zone_end:
            return "upper"
        if self.lower_zone_start <= price <= self.lower_zone_end:
            return "lower"
        return None


class TouchCount(_Frozen):
    top: int = Field(ge=0)
    bottom: int = Field(ge=0)


class RangeStructure(_Frozen):
    symbol: str
    timeframe: str
    range_type: RangeType
    range_high: float
    range_low: float
    range_mid: float
    range_width_atr: float
    range_width_pct: float
    atr: float
    critical_gaps: CriticalGapZones
    touch_count: TouchCount
    validated: bool
    nested_ranges: dict[str, RangeStructure] = Field(default_factory=dict)
    expansion_state: ExpansionState = "stable"
    invalidation_signals: list[str] = Field(default_factory=list)
    start_time: float
    end_time: float

    def contains(self, price: float) -> bool:
        return self.range_low <= price <= self.range_high


class NoRange(_Model):
    """An explicit "no range" answer: the reason code is for code, the message for the trader."""

    reason: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class FilterResult(_Model):
    name: str
    passed: bool
    reason: str
    blocking: bool = True
    details: dict[str, Any] = Field(default_factory=dict)


# The setups of core.analysis.scoring.strategies, named here so the config (which sits below analysis)
# can reject a typo'd strategy name; a test keeps this tuple and the STRATEGIES table equal.
STRATEGY_NAMES: tuple[str, ...] = ("vwap_reversion", "bb_fade", "pdh_pdl_rejection", "rsi_bounce", "liquidity_sweep")


class StrategyScore(_Model):
    strategy: str
    direction: Direction
    entry: float
    stop_loss: float
    take_profit: float
    rr: float
    score: float = Field(ge=0, le=100)
    components: dict[str, float] = Field(default_factory=dict)
    weight: float = 1.0
    viable: bool = True
    reason: str = ""

    @property
    def risk(self) -> float:
        return abs(self.entry - self.stop_loss)


class AnalysisResult(_Model):
    symbol: str
    timeframe: str
    as_of: float
    range: RangeStructure | None = None
    no_range: NoRange | None = None
    filters: list[FilterResult] = Field(default_factory=list)
    passed: bool = False
    strategies: list[StrategyScore] = Field(default_factory=list)
    confidence: float = Field(default=0.0, ge=0, le=100)
    warnings: list[str] = Field(default_factory=list)
    config_version: str = ""
    data_timestamps: dict[str, float] = Field(default_factory=dict)
    timings_ms: dict[str, float] = Field(default_factory=dict)
    session: str = ""
    confluence_score: float = 0.0

    @property
    def top(self) -> StrategyScore | None:
        viable = [s for s in self.strategies if s.viable]
        return viable[0] if viable else None

    @property
    def failures(self) -> list[FilterResult]:
        return [f for f in self.filters if not f.passed and f.blocking]


class ProposalState(str, Enum):
    PENDING = "pending"
    APPROVED = "approved"
    EXECUTING = "executing"
    EXECUTED = "executed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (ProposalState.EXECUTED, ProposalState.REJECTED, ProposalState.EXPIRED, ProposalState.FAILED)


class TradeProposal(_Model):
    id: str
    symbol: str
    strategy: StrategyScore
    analysis: AnalysisResult
    lot: float
    created_at: float
    expires_at: float
    state: ProposalState = ProposalState.PENDING
    decided_by: str | None = None
    decided_at: float | None = None
    ticket: int | None = None
    fill_price: float | None = None
    message: str = ""


class ActiveTrade(_Model):
    ticket: int
    proposal_id: str | None = None
    symbol: str
    strategy: str
    direction: Direction
    entry_price: float
    sl: float
    tp: float
    initial_sl: float
    volume: float
    entry_time: float
    range_data: RangeStructure | None = None
    exit_manager_state: Literal["active", "exiting", "exit_failed", "orphan"] = "active"
    breakeven_moved: bool = False
    mfe_r: float = 0.0
    mae_r: float = 0.0
    last_range_check: float | None = None
    last_state_change: float | None = None
    magic: int = 0
    comment: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    version: int = 0

    @property
    def initial_risk(self) -> float:
        return abs(self.entry_price - self.initial_sl)

    def r_multiple(self, price: float) -> float:
        risk = self.initial_risk
        if risk <= 0:
            return 0.0
        return (price - self.entry_price) * self.direction.sign / risk


class ExitSignal(_Model):
    ticket: int
    priority: ExitPriority
    kind: str
    reason: str
    action: Literal["close", "move_sl", "partial_close"] = "close"
    new_sl: float | None = None
    close_fraction: float = 1.0
    created_at: float = 0.0


class ClosedTrade(_Model):
    ticket: int
    proposal_id: str | None = None
    symbol: str
    strategy: str
    direction: Direction
    volume: float
    entry_price: float
    exit_price: float
    initial_sl: float
    tp: float
    entry_time: float
    exit_time: float
    pnl: float
    commission: float = 0.0
    r_multiple: float
    planned_rr: float = 0.0
    mfe_r: float = 0.0
    mae_r: float = 0.0
    exit_reason: str
    session: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


RangeStructure.model_rebuild()


class Alert(_Model):
    """One notification for the chat channels, from RangeScalpingAlerts or the ErrorHandler.

    It carries data, not rendered text only, so each chat sink can draw its own chart for exit and
    invalidation alerts (rendering lives in bot/, which core must not import).
    """

    kind: str  # e.g. range_invalidated, exit_failed, exit_executed, system_error, auto_disabled, orphan_adopted
    severity: Literal["critical", "high", "medium", "info"]
    title: str
    text: str
    symbol: str | None = None
    ticket: int | None = None
    created_at: float
    dedup_key: str = ""
    trade: ActiveTrade | None = None
    range_data: RangeStructure | None = None
    exit_price: float | None = None


class RecoveryReport(BaseModel):
    """What start-up recovery found and did; kept for /health, which sits below trading."""

    loaded_trades: int = 0
    broker_ok: bool = True
    broker_error: str = ""
    resolved_executing: list[str] = Field(default_factory=list)  # proposal ids found at the broker
    failed_interrupted: list[str] = Field(default_factory=list)  # proposal ids with nothing at the broker
    closed_while_down: list[int] = Field(default_factory=list)
    unresolved: list[int] = Field(default_factory=list)  # gone from the broker but no closing deals yet
    closed_unknown: list[int] = Field(default_factory=list)  # opened+closed at the broker, never stored
    orphans_adopted: list[int] = Field(default_factory=list)
    stops_synced: list[int] = Field(default_factory=list)
    expired: list[str] = Field(default_factory=list)
    duration_ms: float = 0.0
