"""`Store`: the repositories on one SQLite file, plus the multi-row lifecycle steps.

The lifecycle helpers (`record_open`, `record_close`, `record_adopted`, `record_trade_event`) exist
because those steps write several rows that must never be left half-done by a crash: e.g. a fill
that is registered but not journalled, or a trade deleted from the active set without its closed
row. Each runs in ONE transaction; anything that raises inside rolls the whole step back. Callers
composing their own steps use `with store.transaction(): ...` and the repositories, which join it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.config.paths import resolve_path
from core.domain.clock import Clock, SystemClock
from core.domain.copies import copy_with
from core.domain.models import ActiveTrade, ClosedTrade, ProposalState
from core.store.alerts_repo import AlertLogRepo
from core.store.db import Database, Migration
from core.store.errors_repo import ErrorEventRepo
from core.store.journal import JournalEntry, JournalEvent, JournalRepo, TradeMetadata
from core.store.proposals import ProposalRepo
from core.store.schema import MIGRATIONS
from core.store.state import KillSwitchRepo, KVRepo
from core.store.trades import ActiveTradeRepo, ClosedTradeRepo

DEFAULT_STORE_PATH = "data/moneybot.sqlite"


class ProposalConflict(RuntimeError):
    """The proposal was not in a state that allows this lifecycle step (someone else moved it)."""


class Store:
    def __init__(self, path: str | Path = DEFAULT_STORE_PATH, clock: Clock | None = None,
                 migrations: list[Migration] | None = None):
        self.clock: Clock = clock or SystemClock()
        self.db = Database(path, MIGRATIONS if migrations is None else migrations)
        self.path = self.db.path
        self.proposals = ProposalRepo(self.db, self.clock)
        self.trades = ActiveTradeRepo(self.db)
        self.closed = ClosedTradeRepo(self.db)
        self.journal = JournalRepo(self.db, self.clock)
        self.errors = ErrorEventRepo(self.db)
        self.kill_switch = KillSwitchRepo(self.db, self.clock)
        self.alerts = AlertLogRepo(self.db)
        self.kv = KVRepo(self.db, self.clock)

    @classmethod
    def from_config(cls, cfg, clock: Clock | None = None) -> Store:
        """Open the store at config `store.path` (relative paths are relative to the project root)."""
        return cls(resolve_path(cfg.store.path), clock=clock)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE; repository calls inside join it. Never await inside."""
        with self.db.transaction():
            yield

    @property
    def schema_version(self) -> int:
        return self.db.user_version

    def integrity_ok(self) -> bool:
        """`PRAGMA quick_check` passes (for /health and after a crash)."""
        return self.db.conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"

    # -- lifecycle steps (one transaction each) ------------------------------------------------
    def record_open(
        self,
        trade: ActiveTrade,
        *,
        metadata: TradeMetadata | dict[str, Any] | None = None,
        from_states: tuple[ProposalState, ...] = (ProposalState.EXECUTING,),
        data: dict[str, Any] | None = None,
    ) -> ActiveTrade:
        """Proposal → EXECUTED (if `trade.proposal_id`), register the trade, journal 'opened'.

        Raises ProposalConflict (nothing written) if the proposal is not in `from_states`.
        The metadata is also stored on the trade, so the close can journal it without the proposal.
        """
        meta = metadata.model_dump() if isinstance(metadata, TradeMetadata) else dict(
            metadata or TradeMetadata.from_trade(trade).model_dump()
        )
        # one private copy, registered as it is (the version of a new registration is 0)
        trade = copy_with(trade, {"metadata": {**trade.metadata, **meta}, "version": 0})
        with self.db.transaction():
            if trade.proposal_id is not None:
                ok = self.proposals.transition(
                    trade.proposal_id, from_states, ProposalState.EXECUTED,
                    ticket=trade.ticket, fill_price=trade.entry_price, decided_at=self.clock.now(),
                )
                if not ok:
                    p = self.proposals.get(trade.proposal_id)
                    raise ProposalConflict(
                        f"proposal {trade.proposal_id} is {p.state.value if p else 'missing'}, cannot mark it executed"
                    )
            saved = self.trades.add_copy(trade)
            self.journal.add(
                "opened", ticket=trade.ticket, proposal_id=trade.proposal_id, symbol=trade.symbol, metadata=meta,
                data={"direction": trade.direction.value, "entry": trade.entry_price, "sl": trade.sl, "tp": trade.tp,
                      "lot": trade.volume, "magic": trade.magic, "comment": trade.comment, **(data or {})},
                ts=trade.entry_time,
            )
        return saved

    def record_adopted(self, trade: ActiveTrade, data: dict[str, Any] | None = None) -> ActiveTrade:
        """Register an orphan position found at start-up and journal 'adopted', atomically."""
        with self.db.transaction():
            saved = self.trades.add(trade)
            self.journal.add(
                "adopted", ticket=trade.ticket, proposal_id=trade.proposal_id, symbol=trade.symbol,
                metadata=TradeMetadata.from_trade(trade),
                data={"direction": trade.direction.value, "entry": trade.entry_price, "sl": trade.sl, "tp": trade.tp,
                      "lot": trade.volume, "magic": trade.magic, "comment": trade.comment, **(data or {})},
            )
        return saved

    def record_close(self, closed: ClosedTrade, data: dict[str, Any] | None = None) -> bool:
        """Unregister the active trade, insert the closed-trade metrics, journal 'closed' — atomically.

        Idempotent for recovery: returns False (and only makes sure the active row is gone) if this
        ticket was already recorded as closed.
        """
        with self.db.transaction():
            # the active row's text only when the close lacks the metadata; the DELETE says whether the ticket
            # is closed already when it removed a row (else the SELECT of `has`)
            removed = self.trades.remove_closing(closed.ticket, want_data=not closed.metadata)
            active, done = (None, self.closed.has(closed.ticket)) if removed is None else removed
            if done:
                return False
            meta = closed.metadata or (
                TradeMetadata.from_trade(ActiveTrade.from_json(active)).model_dump() if active else {})
            if not closed.metadata and meta:
                closed = closed.model_copy(update={"metadata": meta})
            self.closed.add(closed)
            self.journal.add(
                "closed", ticket=closed.ticket, proposal_id=closed.proposal_id, symbol=closed.symbol, metadata=meta,
                data={"exit_price": closed.exit_price, "pnl": closed.pnl, "r_multiple": closed.r_multiple,
                      "exit_reason": closed.exit_reason, "mfe_r": closed.mfe_r, "mae_r": closed.mae_r,
                      "commission": closed.commission, **(data or {})},
                ts=closed.exit_time,
            )
        return True

    def record_trade_event(
        self,
        ticket: int,
        fn: Callable[[ActiveTrade], ActiveTrade | None],
        event: JournalEvent,
        data: dict[str, Any] | None = None,
    ) -> tuple[ActiveTrade, JournalEntry] | None:
        """Update an active trade and journal an event (sl_moved, partial...) atomically; None if unknown."""
        with self.db.transaction():
            saved = self.trades.update(ticket, fn)
            if saved is None:
                return None
            entry = self.journal.append(
                event, ticket=ticket, proposal_id=saved.proposal_id, symbol=saved.symbol,
                metadata=TradeMetadata.from_trade(saved), data=data,
            )
        return saved, entry

    # -- views ---------------------------------------------------------------------------------
    def export(self, limit: int = 100) -> dict[str, Any]:
        """The store's view as plain JSON-able data (what `moneybot state export` prints).

        It replaces the seed's `range_scalp_trades_active.json`: `active_trades` is keyed by ticket.
        """
        live_states = (ProposalState.PENDING, ProposalState.APPROVED, ProposalState.EXECUTING)
        return {
            "store": str(self.path),
            "schema_version": self.schema_version,
            "exported_at": self.clock.now(),
            "kill_switch": self.kill_switch.get().model_dump(),
            "active_trades": {str(t.ticket): t.to_dict() for t in self.trades.all()},
            "open_proposals": [p.to_dict() for p in self.proposals.list(states=live_states)],
            "recent_proposals": [
                {"id": p.id, "symbol": p.symbol, "strategy": p.strategy.strategy, "state": p.state.value,
                 "created_at": p.created_at, "decided_by": p.decided_by, "ticket": p.ticket, "message": p.message}
                for p in self.proposals.list(limit=limit)
            ],
            "closed_trades": [t.to_dict() for t in self.closed.recent(limit)],
            "journal": [e.model_dump() for e in self.journal.recent(limit)],
            "error_events": [e.model_dump() for e in self.errors.recent(limit)],
            "alerts": self.alerts.recent(limit),
        }
