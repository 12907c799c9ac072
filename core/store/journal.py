"""The trade journal: an append-only event log (the database refuses UPDATE and DELETE on it).

Every event carries the seed's range-scalp metadata (`TradeMetadata`) so analytics can tell range
scalps apart from anything else on the account and slice results by strategy, range type, session
and confluence. Events: opened, sl_moved, tp_moved, partial, closed, adopted (an orphan found at
start-up), exit_failed.
"""
from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.domain.clock import Clock
from core.domain.models import ActiveTrade, TradeProposal
from core.store.db import Database

JournalEvent = Literal["opened", "sl_moved", "tp_moved", "partial", "closed", "adopted", "exit_failed"]
JOURNAL_EVENTS: tuple[str, ...] = JournalEvent.__args__  # type: ignore[attr-defined]
# what json.dumps(..., sort_keys=True, default=str) builds on every call, built once
_PAYLOAD = json.JSONEncoder(sort_keys=True, default=str)
_EVENTS = frozenset(JOURNAL_EVENTS)
_STR = frozenset({str})
# a new trade's entry reason in its journal metadata (non-empty: the strategy's own reason is never used)
ENTRY_REASON = "3_confluence_passed"


class TradeMetadata(BaseModel):
    """The seed's journal metadata for a range-scalp trade."""

    model_config = ConfigDict(extra="allow")

    trade_type: Literal["range_scalp"] = "range_scalp"
    strategy: str
    range_type: str | None = None
    range_high: float | None = None
    range_low: float | None = None
    confluence_score: float | None = None
    planned_rr: float | None = None
    session: str = ""
    entry_reason: str = ""

    @staticmethod
    def _of_proposal(proposal: TradeProposal, entry_reason: str) -> dict[str, Any]:
        """The fields a proposal gives, in field order (after `trade_type`, which keeps its default)."""
        a, s = proposal.analysis, proposal.strategy
        r = a.range
        return {"strategy": s.strategy, "range_type": r.range_type if r else None,
                "range_high": r.range_high if r else None, "range_low": r.range_low if r else None,
                "confluence_score": a.confluence_score, "planned_rr": s.rr, "session": a.session,
                "entry_reason": entry_reason or s.reason}

    @classmethod
    def from_proposal(cls, proposal: TradeProposal, entry_reason: str = ENTRY_REASON) -> TradeMetadata:
        return cls(**cls._of_proposal(proposal, entry_reason))

    @classmethod
    def dump_from_proposal(cls, proposal: TradeProposal, entry_reason: str = ENTRY_REASON) -> dict[str, Any]:
        """`from_proposal(proposal, entry_reason).model_dump()`, as the dict itself when every value already has
        the type the model leaves unchanged (str, float or None, as a proposal's validated models hold them):
        the model and its dump were ~5 us of every order. Anything else (an int score, a str subclass) goes
        through the model, which converts or refuses it (tests/test_order_send_metadata.py)."""
        f = cls._of_proposal(proposal, entry_reason)
        if (type(f["strategy"]) is str and type(f["session"]) is str and type(f["entry_reason"]) is str
                and (f["range_type"] is None or type(f["range_type"]) is str)
                and all(f[k] is None or type(f[k]) is float
                        for k in ("range_high", "range_low", "confluence_score", "planned_rr"))):
            return {"trade_type": "range_scalp", **f}
        return cls(**f).model_dump()

    @classmethod
    def from_trade(cls, trade: ActiveTrade) -> TradeMetadata:
        """Rebuild from an ActiveTrade (its `metadata` dict wins, the range data fills gaps)."""
        base: dict[str, Any] = {"strategy": trade.strategy}
        if trade.range_data is not None:
            base.update(range_type=trade.range_data.range_type, range_high=trade.range_data.range_high,
                        range_low=trade.range_data.range_low)
        base.update({k: v for k, v in trade.metadata.items() if v is not None})
        base["trade_type"] = "range_scalp"
        return cls.model_validate(base)


class JournalEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int | None = None
    ts: float
    event: JournalEvent
    ticket: int | None = None
    proposal_id: str | None = None
    symbol: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)


class JournalRepo:
    def __init__(self, db: Database, clock: Clock):
        self._db = db
        self._clock = clock

    def append(
        self,
        event: JournalEvent,
        *,
        ticket: int | None = None,
        proposal_id: str | None = None,
        symbol: str | None = None,
        metadata: TradeMetadata | dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        ts: float | None = None,
    ) -> JournalEntry:
        """Append one event (joins an enclosing transaction). `data` holds prices, SL moves, P&L..."""
        values, entry = self._checked(event, ticket, proposal_id, symbol, metadata, data, ts, True)
        row_id = self._insert(values)
        if entry is None:  # what JournalEntry(...) would hold: `_checked` vouches the values are its output
            ts, event, ticket, proposal_id, symbol, meta, data = values
            return JournalEntry.model_construct(id=row_id, ts=ts, event=event, ticket=ticket, proposal_id=proposal_id,
                                                symbol=symbol, metadata=meta, data=data)
        entry.id = row_id
        return entry

    def add(
        self,
        event: JournalEvent,
        *,
        ticket: int | None = None,
        proposal_id: str | None = None,
        symbol: str | None = None,
        metadata: TradeMetadata | dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        ts: float | None = None,
    ) -> None:
        """`append` for a caller that does not use the entry (the store's lifecycle steps): the same row, the
        same checks, without building the entry."""
        self._insert(self._checked(event, ticket, proposal_id, symbol, metadata, data, ts, False)[0])

    def _checked(self, event, ticket, proposal_id, symbol, metadata, data, ts,
                 own: bool) -> tuple[tuple, JournalEntry | None]:
        """The row's values (ts, event, ticket, proposal_id, symbol, metadata, data) as `JournalEntry` validates
        them, and the entry when it was built. With `own`, the dicts are private copies (the entry keeps them).

        The validation is skipped when every value already has the exact type it leaves unchanged (what the
        store's own callers pass): a float ts, a known event as a plain str, an int or None ticket, str or None
        ids, and dicts whose keys are all plain str (the values are `Any`: kept as they are either way). Anything
        else (an int ts becomes a float, a str-enum key its value, an unknown event or an int key is refused)
        goes through the model, so the row and the errors are the same (tests/test_store_journal_fast.py)."""
        if isinstance(metadata, TradeMetadata):
            meta = metadata.model_dump()
        else:
            meta = metadata if type(metadata) is dict and not own else dict(metadata or {})
        data = data if type(data) is dict and not own else dict(data or {})
        if ts is None:
            ts = self._clock.now()
        if (type(ts) is float and type(event) is str and event in _EVENTS
                and (ticket is None or type(ticket) is int)
                and (proposal_id is None or type(proposal_id) is str) and (symbol is None or type(symbol) is str)
                and _STR.issuperset(map(type, meta)) and _STR.issuperset(map(type, data))):
            return (ts, event, ticket, proposal_id, symbol, meta, data), None
        entry = JournalEntry(ts=ts, event=event, ticket=ticket, proposal_id=proposal_id, symbol=symbol,
                             metadata=meta, data=data)
        return (entry.ts, entry.event, entry.ticket, entry.proposal_id, entry.symbol, entry.metadata,
                entry.data), entry

    def _insert(self, values: tuple) -> int:
        ts, event, ticket, proposal_id, symbol, meta, data = values
        payload = _PAYLOAD.encode({"metadata": meta, "data": data})
        cur = self._db.write(
            "INSERT INTO journal(ts, event, ticket, proposal_id, symbol, data) VALUES (?,?,?,?,?,?)",
            (ts, event, ticket, proposal_id, symbol, payload),
        )
        return int(cur.lastrowid)

    @staticmethod
    def _row(r) -> JournalEntry:
        payload = json.loads(r["data"])
        return JournalEntry(id=r["id"], ts=r["ts"], event=r["event"], ticket=r["ticket"],
                            proposal_id=r["proposal_id"], symbol=r["symbol"],
                            metadata=payload.get("metadata", {}), data=payload.get("data", {}))

    def for_ticket(self, ticket: int) -> list[JournalEntry]:
        rows = self._db.conn.execute("SELECT * FROM journal WHERE ticket=? ORDER BY id", (ticket,)).fetchall()
        return [self._row(r) for r in rows]

    def for_proposal(self, proposal_id: str) -> list[JournalEntry]:
        rows = self._db.conn.execute(
            "SELECT * FROM journal WHERE proposal_id=? ORDER BY id", (proposal_id,)
        ).fetchall()
        return [self._row(r) for r in rows]

    def recent(self, n: int = 50, event: str | None = None) -> list[JournalEntry]:
        """The last `n` entries, oldest first."""
        if event is None:
            rows = self._db.conn.execute("SELECT * FROM journal ORDER BY id DESC LIMIT ?", (int(n),)).fetchall()
        else:
            rows = self._db.conn.execute(
                "SELECT * FROM journal WHERE event=? ORDER BY id DESC LIMIT ?", (event, int(n))
            ).fetchall()
        return [self._row(r) for r in reversed(rows)]

    def all(self) -> list[JournalEntry]:
        return [self._row(r) for r in self._db.conn.execute("SELECT * FROM journal ORDER BY id")]

    def count(self, event: str | None = None) -> int:
        if event is None:
            return int(self._db.conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0])
        return int(self._db.conn.execute("SELECT COUNT(*) FROM journal WHERE event=?", (event,)).fetchone()[0])
