"""The running monitor's deal-history scan: late fills that open AND close between two cycles.

An order the broker did not confirm (its proposal failed) may still land. If it is open at a cycle,
the monitor adopts it as an orphan; if its SL/TP closes it before the next cycle, no positions call
ever shows it, and only the deal history does. Start-up recovery scans that history; this runs the
same scan (`core.exits.adoption.journal_unknown_closed`) while the bot is up, so the trader hears about it
within a cycle instead of at the next restart.

Why a cadence instead of every cycle: the scan lists a day of deals and looks each position up in the
store, which the p99 budget of a 200-trade cycle cannot pay every time. So it runs
- every cycle (at most every `SUSPECT_SCAN_GAP` s) while a proposal failed in this process although
  its order may have reached the broker (`ExecutionEngine.unconfirmed`, kept `SUSPECT_WATCH_SECONDS`),
- otherwise every `SWEEP_SECONDS`, for anything else with our magic (a failure in another process,
  a position a human opened with our magic, a suspect older than the watch).
The kv watermark and the "already journalled" checks are recovery's, so a position is journalled and
alerted once whether this scan or a start-up scan sees it first. The service wires it into its monitor;
a backtest's monitor (every position registered by its own engine) runs without it.
"""
from __future__ import annotations

import logging

from core.brokers.base import BrokerError, Position
from core.brokers.tags import proposal_id_from_comment
from core.exits.adoption import journal_unknown_closed, our_magics

log = logging.getLogger(__name__)

SUSPECT_WATCH_SECONDS = 3600.0  # how long an unconfirmed order is expected to possibly land
SUSPECT_SCAN_GAP = 10.0  # tick-driven cycles run every second: the history is not read that often
SWEEP_SECONDS = 1800.0  # the scan without a suspect


class LateFillWatch:
    def __init__(self, cfg, broker, exits, executor, notifier, clock, engine=None) -> None:
        self.cfg, self.broker, self.exits, self.executor = cfg, broker, exits, executor
        self.notify, self.clock = notifier, clock
        self.engine = engine  # the ExecutionEngine: its suspects (`unconfirmed`) and in-flight ids
        self.last_scan: float | None = None  # None: start-up recovery has just scanned
        self.journalled: list[int] = []  # tickets this watch journalled (for /health and tests)

    def _newest_suspect(self, now: float, positions: dict[int, Position]) -> float | None:
        """When the newest still-watched unconfirmed proposal failed (None: nothing to watch)."""
        pending: dict[str, float] = getattr(self.engine, "unconfirmed", None) or {}
        if not pending:
            return None
        landed = {proposal_id_from_comment(p.comment) for p in positions.values()}
        for pid, at in list(pending.items()):
            if pid in landed or now - at > SUSPECT_WATCH_SECONDS:  # open: the monitor adopts and follows it
                pending.pop(pid, None)
        return max(pending.values(), default=None)

    def due(self, positions: dict[int, Position]) -> bool:
        now = self.clock.now()
        newest = self._newest_suspect(now, positions)
        if self.last_scan is None:  # the first cycle after start-up recovery, which has just scanned
            self.last_scan = now
            return newest is not None
        if newest is not None:
            return newest > self.last_scan or now - self.last_scan >= SUSPECT_SCAN_GAP
        return now - self.last_scan >= SWEEP_SECONDS

    async def maybe_scan(self, positions: dict[int, Position], errors: list[str]) -> int:
        """Scan when due; return how many positions were journalled. Never raises (the cycle goes on)."""
        if not self.due(positions):
            return 0
        self.last_scan = self.clock.now()
        try:
            found = await journal_unknown_closed(
                self.executor.store, self.broker, self.exits, self.engine, self.executor, self.notify, self.clock,
                positions, our_magics(self.cfg, self.exits.active_trades()))
        except BrokerError as e:  # the watermark did not move: the next scan reads the same window
            errors.append(f"deal-history scan: {e.message}")
            log.warning("deal-history scan failed: %s", e)
            return 0
        except Exception as e:  # noqa: BLE001 - a bug here must not cost the cycle's exits
            errors.append(f"deal-history scan: {type(e).__name__}: {e}")
            log.exception("deal-history scan crashed")
            return 0
        if found:
            pending = getattr(self.engine, "unconfirmed", None)
            for ticket in found:
                t = self.executor.store.closed.get(ticket)
                if pending is not None and t is not None and t.proposal_id:
                    pending.pop(t.proposal_id, None)
            self.journalled += found
        return len(found)
