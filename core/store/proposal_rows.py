"""How a proposal is laid out in its rows: the analysis once in `analyses`, the rest in `proposals.data`.

The analysis is nearly all of a proposal's JSON (~3.5 KB of ~4), never changes after creation and is the
same for every proposal (one per viable strategy) of one analysis. Kept in the proposal's own row it was
written once per proposal and rewritten by every state change; in its own row it is written once, and a
transition rewrites half a kilobyte. An analysis row is never updated or deleted (triggers refuse it), so
its id names its content for the database's life: a parse of it can be kept by id.

Reading gives exactly what parsing the whole proposal's JSON gave: the fields other than the analysis are
parsed from their JSON by a model of those fields alone (same annotations, constraints and config; the
proposal has no model validators, a test checks it), and the analysis from its own JSON.
"""
from __future__ import annotations

import json
import sqlite3

from pydantic import create_model

from core.domain.models import AnalysisResult, TradeProposal

_FIELDS = list(TradeProposal.model_fields)
_HEAD = frozenset(_FIELDS[:_FIELDS.index("analysis")])
# a proposal's text ends in these: every transition changes only them, so it re-serialises them alone
TAIL = frozenset(_FIELDS[_FIELDS.index("analysis") + 1:])
_NOT_ANALYSIS = frozenset(_FIELDS) - {"analysis"}
# the fields a proposal's own row holds, validated as in TradeProposal
_Rest = create_model(
    "ProposalRest", __config__=TradeProposal.model_config,
    **{name: (f.annotation, f) for name, f in TradeProposal.model_fields.items() if name != "analysis"},
)


def row_text(p: TradeProposal) -> str:
    """What `proposals.data` holds: the proposal's JSON without its analysis."""
    return p.model_dump_json(include=_NOT_ANALYSIS)


def compose(text: str, analysis: AnalysisResult) -> TradeProposal:
    """The proposal a row's text and its analysis' parse make: the parse of the proposal's whole JSON."""
    rest = _Rest.model_validate_json(text)
    return TradeProposal.model_construct(rest.model_fields_set | {"analysis"}, analysis=analysis, **rest.__dict__)


def with_new_tail(old_text: str, old: TradeProposal, new: TradeProposal, old_tail: str | None = None
                  ) -> tuple[str, str | None]:
    """`row_text(new)` for a `new` that differs from `old` (the parse of `old_text`) only in tail fields, and
    `new`'s serialised tail (None after a full dump). `old_tail`: `old`'s serialised tail if known.

    Falls back to the full dump when the stored text does not end in `old`'s serialised tail (a text
    some other writer formatted differently)."""
    if old_tail is None:
        old_tail = old.model_dump_json(include=TAIL)
    n = len(old_tail) - 1  # the tail's fields and the closing brace, without its opening one
    if len(old_text) > n and old_text[-n - 1] == "," and old_text.endswith(old_tail[1:]):
        new_tail = new.model_dump_json(include=TAIL)
        return old_text[:-n] + new_tail[1:], new_tail
    return row_text(new), None


def new_rows(proposal: TradeProposal, analyses: dict[int, tuple[AnalysisResult, str, str, AnalysisResult]]
             ) -> tuple[str, str, TradeProposal, str]:
    """(row text, analysis id, exactly what reading the rows gives, serialised tail) of a new proposal.

    An analysis is dumped and parsed once per `create_many` call (`analyses`: id of the object -> (the
    object, its row id, its JSON, its parse)), however many proposals share it; its row id is the id of the
    first of them (unique: proposal ids are, and both rows are written in one transaction)."""
    a = proposal.analysis
    memo = analyses.get(id(a))
    if memo is None:
        a_text = a.to_json()
        # holds `a`, so its id() stays its own for the call
        memo = analyses[id(a)] = (a, proposal.id, a_text, AnalysisResult.from_json(a_text))
    text = row_text(proposal)
    return text, memo[1], compose(text, memo[3]), tail_of(text)


# The first tail field's key as it follows the head in a row's text. `,"` never occurs inside a JSON string
# (its quotes are escaped) and the tail's values are scalars, so its last occurrence is the tail's start.
_TAIL_KEY = f',"{_FIELDS[_FIELDS.index("analysis") + 1]}":'


def tail_of(text: str) -> str:
    """The serialised tail (`model_dump_json(include=TAIL)`) of the proposal `text` is the `row_text` of:
    its fields are dumped in order with the same separators, so the tail is the text's end, re-opened."""
    return "{" + text[text.rindex(_TAIL_KEY) + 1:]


# -- schema 4 ------------------------------------------------------------------------------------------
V4_SQL = (
    "CREATE TABLE analyses (id TEXT PRIMARY KEY, data TEXT NOT NULL)",
    "CREATE TRIGGER analyses_no_update BEFORE UPDATE ON analyses"
    " BEGIN SELECT RAISE(ABORT, 'an analysis row never changes'); END",
    "CREATE TRIGGER analyses_no_delete BEFORE DELETE ON analyses"
    " BEGIN SELECT RAISE(ABORT, 'an analysis row never changes'); END",
    "ALTER TABLE proposals ADD COLUMN analysis_id TEXT",
)


def split_stored(text: str) -> tuple[str, str]:
    """An old row's whole-proposal JSON as (the rest, the analysis): split as JSON values, so every number
    and string (NaN and infinities too) reads back as it did, whatever the row's formatting. A text that
    is not a JSON object with an analysis is kept as it is (it did not read before either)."""
    try:
        whole = json.loads(text)
        analysis = whole.pop("analysis")
    except (ValueError, TypeError, KeyError, AttributeError):
        return text, "null"
    dump = {"separators": (",", ":"), "ensure_ascii": False}
    return json.dumps(whole, **dump), json.dumps(analysis, **dump)


def migrate_v4(conn: sqlite3.Connection) -> None:
    """Each proposal's analysis moves to its own row (id: the proposal's id)."""
    for stmt in V4_SQL:
        conn.execute(stmt)
    for pid, text in conn.execute("SELECT id, data FROM proposals").fetchall():
        rest, analysis = split_stored(text)
        conn.execute("INSERT INTO analyses(id, data) VALUES (?,?)", (pid, analysis))
        conn.execute("UPDATE proposals SET analysis_id=?, data=? WHERE id=?", (pid, rest, pid))
