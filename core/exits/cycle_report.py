"""What one monitor cycle saw and did: kept on the monitor (`last_report`) for /health, the benches and
the tests, which read a cycle's exits, stop moves and errors without parsing logs."""
from __future__ import annotations

from dataclasses import dataclass, field

from core.domain.models import ExitSignal


@dataclass
class CycleReport:
    started: float
    trades: int = 0
    symbols: int = 0
    signals: list[ExitSignal] = field(default_factory=list)
    exits: int = 0
    sl_moves: int = 0
    broker_closes: int = 0
    late_fills: int = 0  # opened and closed between cycles, journalled from the deal history
    errors: list[str] = field(default_factory=list)
    connected: bool = True
    duration_ms: float = 0.0
    broker_ms: float = 0.0
