"""Proposals: the approval state machine, with compare-and-set transitions.

A double tap on "Approve", a replayed Telegram callback, or a restart in the middle of execution
must never send a second order. So every state change is `transition(id, from_states, to_state)`:
it succeeds for exactly one caller (the row's state is checked and changed under the write lock)
and returns False for everyone else. Moves the state machine forbids raise, because those are bugs.

Ids are short and URL/callback safe: Telegram callback_data is ≤ 64 bytes and an MT5 order comment
≤ 31 chars, and the id has to fit in both (the order comment is how a restart finds an order that
was already sent).
"""
from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from core.domain.clock import Clock
from core.domain.models import ProposalState, TradeProposal
from core.store.db import Database

PROPOSAL_ID_LEN = 10
_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o/1/l: ids get read aloud and typed

# from-state -> states it may move to
ALLOWED_TRANSITIONS: dict[ProposalState, frozenset[ProposalState]] = {
    ProposalState.PENDING: frozenset(
        {ProposalState.APPROVED, ProposalState.EXECUTING, ProposalState.REJECTED, ProposalState.EXPIRED,
         ProposalState.FAILED}
    ),
    ProposalState.APPROVED: frozenset({ProposalState.EXECUTING, ProposalState.FAILED, ProposalState.EXPIRED}),
    ProposalState.EXECUTING: frozenset({ProposalState.EXECUTED, ProposalState.FAILED}),
    ProposalState.EXECUTED: frozenset(),
    ProposalState.REJECTED: frozenset(),
    ProposalState.EXPIRED: frozenset(),
    ProposalState.FAILED: frozenset(),
}

# fields of TradeProposal that a transition may set alongside the state
TRANSITION_FIELDS = frozenset({"decided_by", "decided_at", "ticket", "fill_price", "message"})


class IllegalTransition(ValueError):
    """A transition the state machine forbids (a bug in the caller, not a race)."""


def new_proposal_id() -> str:
    """10 chars from a 32-letter alphabet (50 bits): unique enough, short enough for comments."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(PROPOSAL_ID_LEN))


def is_valid_proposal_id(text: str) -> bool:
    return 1 <= len(text) <= 16 and all(c.isascii() and (c.isalnum() or c in "-_") for c in text)


_PARSED_KEEP = 64


class ProposalRepo:
    def __init__(self, db: Database, clock: Clock):
        self._db = db
        self._clock = clock
        # id -> (stored JSON, parsed proposal): a proposal embeds its whole analysis, and one approval
        # reads and rewrites the same row about ten times. The row's text is still read every time and
        # compared, so what is returned is exactly what parsing that text gives; each caller gets its
        # own (shallow) copy, and nothing mutates a proposal's nested analysis or strategy in place.
        self._parsed: OrderedDict[str, tuple[str, TradeProposal]] = OrderedDict()
        self._parsed_lock = threading.Lock()  # the live bot reads proposals from worker threads too

    def _parse(self, text: str) -> TradeProposal:
        p = TradeProposal.from_json(text)
        self._remember(text, p)
        return p.model_copy()

    def _remember(self, text: str, p: TradeProposal) -> None:
        with self._parsed_lock:
            self._parsed[p.id] = (text, p)
            self._parsed.move_to_end(p.id)
            while len(self._parsed) > _PARSED_KEEP:
                self._parsed.popitem(last=False)

    def _from_row(self, proposal_id: str, text: str) -> TradeProposal:
        with self._parsed_lock:
            hit = self._parsed.get(proposal_id)
        if hit is not None and hit[0] == text:
            return hit[1].model_copy()
        return self._parse(text)

    def create(self, proposal: TradeProposal) -> TradeProposal:
        """Insert a new proposal (its id must be unused)."""
        if not is_valid_proposal_id(proposal.id):
            raise ValueError(f"proposal id {proposal.id!r} must be 1-16 chars of [A-Za-z0-9_-]")
        with self._db.transaction() as c:
            c.execute(
                "INSERT INTO proposals(id, symbol, strategy, state, created_at, expires_at, updated_at,"
                " decided_by, ticket, data) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (proposal.id, proposal.symbol, proposal.strategy.strategy, proposal.state.value,
                 proposal.created_at, proposal.expires_at, self._clock.now(), proposal.decided_by,
                 proposal.ticket, proposal.to_json()),
            )
        return proposal

    def get(self, proposal_id: str) -> TradeProposal | None:
        row = self._db.conn.execute("SELECT data FROM proposals WHERE id=?", (proposal_id,)).fetchone()
        return self._from_row(proposal_id, row["data"]) if row else None

    def transition(
        self,
        proposal_id: str,
        from_states: ProposalState | Iterable[ProposalState],
        to_state: ProposalState,
        **fields: Any,
    ) -> bool:
        """Move `proposal_id` to `to_state` iff it is currently in one of `from_states`.

        Returns True for the one caller that won, False if the proposal is missing or already in
        another state (double tap, replay, expiry race). `fields` (decided_by, decided_at, ticket,
        fill_price, message) are written in the same statement. Joins an enclosing transaction.
        """
        froms = {ProposalState(from_states)} if isinstance(from_states, (str, ProposalState)) else {
            ProposalState(s) for s in from_states
        }
        to_state = ProposalState(to_state)
        bad = [s for s in froms if to_state not in ALLOWED_TRANSITIONS[s]]
        if bad:
            raise IllegalTransition(
                f"proposal transition {'/'.join(sorted(s.value for s in bad))} -> {to_state.value} is not allowed"
            )
        unknown = set(fields) - TRANSITION_FIELDS
        if unknown:
            raise ValueError(f"transition cannot set {sorted(unknown)}")
        with self._db.transaction() as c:
            row = c.execute("SELECT state, data FROM proposals WHERE id=?", (proposal_id,)).fetchone()
            if row is None or ProposalState(row["state"]) not in froms:
                return False
            # Field by field through validate_assignment: the same validation model_validate of the whole
            # dumped proposal would give these fields, without re-validating the embedded analysis.
            updated = self._from_row(proposal_id, row["data"])
            for name, value in {"state": to_state, **fields}.items():
                setattr(updated, name, value)
            text = updated.to_json()
            cur = c.execute(
                "UPDATE proposals SET state=?, updated_at=?, decided_by=?, ticket=?, data=? WHERE id=? AND state=?",
                (to_state.value, self._clock.now(), updated.decided_by, updated.ticket, text,
                 proposal_id, row["state"]),
            )
            if cur.rowcount == 1:
                self._remember(text, updated.model_copy())
            return cur.rowcount == 1

    def list(
        self,
        states: Iterable[ProposalState] | None = None,
        symbol: str | None = None,
        limit: int | None = None,
    ) -> list[TradeProposal]:
        """Newest first."""
        sql, args = "SELECT data FROM proposals WHERE 1=1", []
        if states is not None:
            st = [ProposalState(s).value for s in states]
            sql += f" AND state IN ({','.join('?' * len(st))})"
            args += st
        if symbol is not None:
            sql += " AND symbol=?"
            args.append(symbol)
        sql += " ORDER BY created_at DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return [TradeProposal.from_json(r["data"]) for r in self._db.conn.execute(sql, args)]

    def expire_due(self, now: float | None = None) -> list[str]:
        """Move every pending proposal whose expiry has passed to EXPIRED; return their ids.

        Only pending: an approved one was approved in time and is being priced/sent right now (its
        engine moves it on; start-up recovery fails one a crash left behind).
        """
        now = self._clock.now() if now is None else now
        expired = []
        # The monitor asks every cycle and nearly always nothing is due: look first on the same connection
        # (it sees what an enclosing transaction wrote), and take the write lock only when there is work;
        # each transition below re-checks the state inside the transaction, so a race changes nothing.
        if not self._db.conn.execute(
            "SELECT 1 FROM proposals WHERE state = ? AND expires_at <= ? LIMIT 1", (ProposalState.PENDING.value, now)
        ).fetchall():
            return expired
        with self._db.transaction() as c:
            rows = c.execute(
                "SELECT id FROM proposals WHERE state = ? AND expires_at <= ?",
                (ProposalState.PENDING.value, now),
            ).fetchall()
            for r in rows:
                if self.transition(r["id"], ProposalState.PENDING, ProposalState.EXPIRED,
                                   decided_at=now, message="expired"):
                    expired.append(r["id"])
        return expired
