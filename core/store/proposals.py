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

import math
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from pydantic import create_model

from core.domain.clock import Clock
from core.domain.copies import copy_with
from core.domain.models import AnalysisResult, ProposalState, TradeProposal
from core.store.db import Database
from core.store.proposal_rows import compose, new_rows, with_new_tail

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
# the fields a transition sets, validated as in TradeProposal (same annotations, constraints and config)
_TailFields = create_model(
    "ProposalTail", __config__=TradeProposal.model_config,
    **{name: (f.annotation, f) for name, f in TradeProposal.model_fields.items()
       if name == "state" or name in TRANSITION_FIELDS},
)
# Per transition field, the value types its validation returns unchanged (the same object): a move whose values
# are all of these skips the validation (a test checks each against _TailFields; the state is a ProposalState).
_AS_IS = {"decided_by": (str, type(None)), "decided_at": (float, type(None)), "ticket": (int, type(None)),
          "fill_price": (float, type(None)), "message": (str,)}


class IllegalTransition(ValueError):
    """A transition the state machine forbids (a bug in the caller, not a race)."""


def _checked_move(from_states, to_state) -> tuple[frozenset[ProposalState], ProposalState]:
    """The states of a move the state machine allows; raises IllegalTransition for one it forbids."""
    if isinstance(from_states, (str, ProposalState)):
        from_states = (from_states,)
    elif not isinstance(from_states, (tuple, frozenset)):  # a list, a generator: read once, as a tuple
        from_states = tuple(from_states)
    return _checked(from_states, to_state)


@lru_cache(maxsize=64)  # the same few pairs come every time; a forbidden one raises and is never kept
def _checked(from_states: tuple | frozenset, to_state) -> tuple[frozenset[ProposalState], ProposalState]:
    froms = frozenset(ProposalState(s) for s in from_states)
    to = ProposalState(to_state)
    bad = [s for s in froms if to not in ALLOWED_TRANSITIONS[s]]
    if bad:
        raise IllegalTransition(
            f"proposal transition {'/'.join(sorted(s.value for s in bad))} -> {to.value} is not allowed"
        )
    return froms, to


def new_proposal_id() -> str:
    """10 chars from a 32-letter alphabet (50 bits): unique enough, short enough for comments.

    One `randbits` call, 5 bits per letter: the same uniform draw as a `secrets.choice` per letter."""
    bits = secrets.randbits(5 * PROPOSAL_ID_LEN)
    return "".join(_ALPHABET[(bits >> (5 * i)) & 31] for i in range(PROPOSAL_ID_LEN))


_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,16}")  # 1-16 ASCII letters, digits, '-' or '_' (no trailing-newline slack)


def is_valid_proposal_id(text: str) -> bool:
    return _ID_RE.fullmatch(text) is not None


_PARSED_KEEP = 64

# a move's compare-and-set UPDATE; the second form also requires the row to be exactly the text remembered
_MOVE_SQL = "UPDATE proposals SET state=?, updated_at=?, decided_by=?, ticket=?, data=? WHERE id=? AND state=?"
_MOVE_SAME_SQL = _MOVE_SQL + " AND data=? AND analysis_id=?"

# A cache entry: (row text, analysis id, the proposal those rows read as, its serialised tail when the text is
# known to end in it else None, the rollback count before the rows were read or written).
_Entry = tuple[str, str, TradeProposal, "str | None", int]


class ProposalRepo:
    def __init__(self, db: Database, clock: Clock):
        self._db = db
        self._clock = clock
        # id -> _Entry: one approval reads and rewrites the same row about ten times. The row's text and
        # analysis id are still read every time and compared, so what is returned is exactly what reading the
        # rows gives (an analysis row never changes; one written in a rolled-back transaction may come back
        # with other content under the same id, hence the rollback count); each caller gets its own (shallow)
        # copy, and nothing mutates a proposal's nested analysis or strategy in place.
        self._parsed: OrderedDict[str, _Entry] = OrderedDict()
        # analysis id -> (rollback count, parse): the proposals of one analysis share it
        self._analyses: OrderedDict[str, tuple[int, AnalysisResult]] = OrderedDict()
        self._parsed_lock = threading.Lock()  # the live bot reads proposals from worker threads too
        # A private (`:memory:`) store: (rollback count, a lower bound of every pending row's expiry). Only
        # this repo writes proposals (tests/test_store_private_cache.py checks the sources), no move leads
        # back to pending and a new row drops the bound, so while no rollback has happened since the bound
        # was read, an expiry check before it finds nothing; it is read and dropped under the write lock.
        self._floor: tuple[int, float] | None = None

    def _remember(self, entry: _Entry) -> None:
        pid = entry[2].id
        with self._parsed_lock:
            self._parsed[pid] = entry
            self._parsed.move_to_end(pid)
            while len(self._parsed) > _PARSED_KEEP:
                self._parsed.popitem(last=False)

    def _keep_analysis(self, analysis_id: str, stamp: int, analysis: AnalysisResult) -> None:
        with self._parsed_lock:
            self._analyses[analysis_id] = (stamp, analysis)
            self._analyses.move_to_end(analysis_id)
            while len(self._analyses) > _PARSED_KEEP:
                self._analyses.popitem(last=False)

    def _entry(self, proposal_id: str, text: str, analysis_id: str | None, stamp: int) -> _Entry:
        """The cache entry of the rows as read (`stamp`: the rollback count read before them)."""
        with self._parsed_lock:
            hit = self._parsed.get(proposal_id)
        if hit is not None and hit[0] == text and hit[1] == analysis_id and hit[4] == self._db.rollbacks:
            return hit
        entry = (text, analysis_id, compose(text, self._analysis(analysis_id, stamp)), None, stamp)
        self._remember(entry)
        return entry

    def _analysis(self, analysis_id: str | None, stamp: int) -> AnalysisResult:
        with self._parsed_lock:
            hit = self._analyses.get(analysis_id)
        if hit is not None and hit[0] == self._db.rollbacks:
            return hit[1]
        row = self._db.conn.execute("SELECT data FROM analyses WHERE id=?", (analysis_id,)).fetchone()
        # a proposal without its analysis does not read (the parse of JSON null fails), as a corrupt row did not
        analysis = AnalysisResult.from_json(row[0] if row else "null")
        self._keep_analysis(analysis_id, stamp, analysis)
        return analysis

    def create(self, proposal: TradeProposal) -> TradeProposal:
        """Insert a new proposal (its id must be unused)."""
        return self.create_many([proposal])[0]

    def create_many(self, proposals: list[TradeProposal]) -> list[TradeProposal]:
        """Insert new proposals (ids unused): the offers of one analysis, all or none."""
        if not proposals:
            return []
        for p in proposals:
            if not is_valid_proposal_id(p.id):
                raise ValueError(f"proposal id {p.id!r} must be 1-16 chars of [A-Za-z0-9_-]")
        analyses: dict = {}
        rows = [new_rows(p, analyses) for p in proposals]
        now = self._clock.now()
        with self._db.transaction():  # the analyses and their proposals, one multi-row INSERT each
            stamp = self._db.rollbacks
            self._floor = None
            self._db.write("INSERT INTO analyses(id, data) VALUES " + ",".join(["(?,?)"] * len(analyses)),
                           [v for _, aid, a_text, _ in analyses.values() for v in (aid, a_text)])
            self._db.write(
                "INSERT INTO proposals(id, symbol, strategy, state, created_at, expires_at, updated_at, decided_by,"
                " ticket, analysis_id, data) VALUES " + ",".join(["(?,?,?,?,?,?,?,?,?,?,?)"] * len(proposals)),
                [v for p, (text, aid, _, _) in zip(proposals, rows, strict=True)
                 for v in (p.id, p.symbol, p.strategy.strategy, p.state.value, p.created_at, p.expires_at, now,
                           p.decided_by, p.ticket, aid, text)],
            )
        # only once the rows are written: a failed insert leaves nothing cached
        for _, aid, _, parsed_analysis in analyses.values():
            self._keep_analysis(aid, stamp, parsed_analysis)
        for text, aid, parsed, tail in rows:
            self._remember((text, aid, parsed, tail, stamp))
        return list(proposals)

    def get(self, proposal_id: str) -> TradeProposal | None:
        stamp = self._db.rollbacks
        row = self._db.conn.execute("SELECT data, analysis_id FROM proposals WHERE id=?", (proposal_id,)).fetchone()
        return copy_with(self._entry(proposal_id, row[0], row[1], stamp)[2], {}) if row else None

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
        return self._move(proposal_id, from_states, to_state, fields) is not None

    def move(
        self,
        proposal_id: str,
        from_states: ProposalState | Iterable[ProposalState],
        to_state: ProposalState,
        **fields: Any,
    ) -> TradeProposal | None:
        """`transition`, returning the proposal as this move wrote it (None if the move lost), so the
        winner need not read the row back."""
        moved = self._move(proposal_id, from_states, to_state, fields)
        return None if moved is None else copy_with(moved, {})

    def _move(self, proposal_id: str, from_states, to_state: ProposalState,
              fields: dict[str, Any]) -> TradeProposal | None:
        froms, to_state = _checked_move(from_states, to_state)
        if fields and not TRANSITION_FIELDS.issuperset(fields):
            raise ValueError(f"transition cannot set {sorted(set(fields) - TRANSITION_FIELDS)}")
        # One read and one conditional write, not a BEGIN/SAVEPOINT pair around them: the UPDATE is the
        # compare-and-set (WHERE state = the state read), and the state machine has no cycles, so a row
        # still in the state read is the row read. The in-process write lock is held across both so a
        # thread sharing a `:memory:` connection never judges another thread's uncommitted state.
        with self._db.write_lock:
            # The row this repo last wrote or read is usually still the row: then the read is skipped and the
            # UPDATE's compare-and-set includes the whole text (WHERE data = the remembered text), so it
            # writes only over exactly that row; anything else (another writer, an evicted entry) reads.
            with self._parsed_lock:
                hit = self._parsed.get(proposal_id)
            if hit is not None and hit[4] == self._db.rollbacks and hit[2].state in froms:
                try:
                    moved = self._moved(hit, to_state, fields)
                except ValueError:  # bad fields: judged below on the row as read (one in another state loses first)
                    moved = None
                if moved is not None and self._write_move(proposal_id, hit, hit[2].state.value, moved, True):
                    return moved[2]
            stamp = self._db.rollbacks
            row = self._db.conn.execute("SELECT state, data, analysis_id FROM proposals WHERE id=?",
                                        (proposal_id,)).fetchone()
            if row is None or ProposalState(row[0]) not in froms:
                return None
            entry = self._entry(proposal_id, row[1], row[2], stamp)
            moved = self._moved(entry, to_state, fields)
            return moved[2] if self._write_move(proposal_id, entry, row[0], moved, False) else None

    @staticmethod
    def _moved(entry: _Entry, to_state: ProposalState, fields: dict[str, Any]) -> _Entry:
        """The entry a move of the row `entry` writes."""
        old_text, analysis_id, old, old_tail, stamp = entry
        # The changed fields through a model of the tail fields alone (the same annotations and config):
        # the validation model_validate of the whole dumped proposal would give them, without
        # re-validating the embedded analysis (validate_assignment does, per field: ~17 µs each).
        changes = {"state": to_state, **fields}
        if not all(type(v) in _AS_IS[name] for name, v in fields.items()):
            checked = _TailFields.model_validate(changes)
            changes = {name: getattr(checked, name) for name in changes}
        new = copy_with(old, changes)
        text, tail = with_new_tail(old_text, old, new, old_tail)
        return text, analysis_id, new, tail, stamp

    def _write_move(self, proposal_id: str, old: _Entry, from_value: str, moved: _Entry, same_text: bool) -> bool:
        """The compare-and-set UPDATE: the row still in `from_value` (and, with `same_text`, still exactly the
        rows of `old`). True, and the new row remembered, iff it wrote."""
        updated = moved[2]
        args = (updated.state.value, self._clock.now(), updated.decided_by, updated.ticket, moved[0], proposal_id,
                from_value)
        cur = self._db.write(_MOVE_SAME_SQL, (*args, old[0], old[1])) if same_text else self._db.write(_MOVE_SQL, args)
        if cur.rowcount != 1:
            return False
        self._remember(moved)
        return True

    def list(
        self,
        states: Iterable[ProposalState] | None = None,
        symbol: str | None = None,
        limit: int | None = None,
    ) -> list[TradeProposal]:
        """Newest first."""
        sql = "SELECT p.data, a.data FROM proposals p LEFT JOIN analyses a ON a.id = p.analysis_id WHERE 1=1"
        args: list[Any] = []
        if states is not None:
            st = [ProposalState(s).value for s in states]
            sql += f" AND p.state IN ({','.join('?' * len(st))})"
            args += st
        if symbol is not None:
            sql += " AND p.symbol=?"
            args.append(symbol)
        sql += " ORDER BY p.created_at DESC, p.rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return [compose(r[0], AnalysisResult.from_json(r[1] or "null")) for r in self._db.conn.execute(sql, args)]

    def expire_due(self, now: float | None = None) -> list[str]:
        """Move every pending proposal whose expiry has passed to EXPIRED; return their ids.

        Only pending: an approved one was approved in time and is being priced/sent right now (its
        engine moves it on; start-up recovery fails one a crash left behind).
        """
        now = self._clock.now() if now is None else now
        expired: list[str] = []
        floor = self._floor
        if floor is not None and floor[0] == self._db.rollbacks and now < floor[1]:
            return expired
        # The monitor asks every cycle and nearly always nothing is due: look first on the same connection
        # (it sees what an enclosing transaction wrote), and take the write lock only when there is work;
        # each transition below re-checks the state inside the transaction, so a race changes nothing.
        if self._db.private:
            with self._db.write_lock:
                stamp = self._db.rollbacks
                first = self._db.conn.execute("SELECT MIN(expires_at) FROM proposals WHERE state = ?",
                                              (ProposalState.PENDING.value,)).fetchone()[0]
                self._floor = (stamp, math.inf if first is None else first)
            if first is None or not first <= now:
                return expired
        elif not self._db.conn.execute(
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
