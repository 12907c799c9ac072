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
import math
import sqlite3
from json.encoder import encode_basestring

from pydantic import create_model

from core.domain.models import AnalysisResult, ProposalState, TradeProposal

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


# `model_construct` of a TradeProposal sets exactly its __dict__, fields set, extra (None: extra is
# forbidden) and private (None: it has none); `build` sets the same four directly, skipping model_construct's
# per-field alias and default handling (~4 µs of ~5). Only while the model keeps to that (checked here, so a
# new alias, private attribute or post-init turns the shortcut off rather than wrong; a test compares both).
_PLAIN = (not TradeProposal.__private_attributes__ and TradeProposal.__pydantic_post_init__ is None
          and not TradeProposal.__pydantic_root_model__ and TradeProposal.model_config.get("extra") == "forbid"
          and TradeProposal.__new__ is object.__new__
          and all(f.alias is None and f.validation_alias is None for f in TradeProposal.model_fields.values()))
_HEAD_ORDER = tuple(_FIELDS[:_FIELDS.index("analysis")])
_new = object.__new__
_set = object.__setattr__


def build(values: dict, fields_set: set[str]) -> TradeProposal:
    """`TradeProposal.model_construct(fields_set, **values)` for `values` holding every field in field order."""
    if not _PLAIN:
        return TradeProposal.model_construct(fields_set, **values)
    m = _new(TradeProposal)
    _set(m, "__dict__", values)
    _set(m, "__pydantic_fields_set__", fields_set)
    _set(m, "__pydantic_extra__", None)
    _set(m, "__pydantic_private__", None)
    return m


def compose(text: str, analysis: AnalysisResult) -> TradeProposal:
    """The proposal a row's text and its analysis' parse make: the parse of the proposal's whole JSON."""
    rest = _Rest.model_validate_json(text)
    d = rest.__dict__  # every field but the analysis (validation fills defaults), in field order
    values = {name: d[name] for name in _HEAD_ORDER}
    values["analysis"] = analysis
    values.update(d)
    return build(values, rest.model_fields_set | {"analysis"})


# How `model_dump_json` writes each tail field's value, for the value types validation gives it (a value of any
# other type, e.g. one set by model_construct, goes to pydantic). Floats: a finite float whose repr has no
# exponent is written as its repr (both are the shortest round-trip digits, laid out alike in that range; the
# exponent forms differ, e.g. 1e-05 vs 0.00001, so those go to pydantic); inf/nan as the constants the config
# asks for. Strings: ASCII ones as the json module writes them without ensure_ascii (the same escapes: the
# two-letter ones, lowercase \u00XX for other controls, nothing for DEL); others go to pydantic.
def _float(v) -> str | None:
    if type(v) is not float:
        return None
    if v != v:
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    r = repr(v)
    return None if "e" in r else r


def _str(v) -> str | None:
    return encode_basestring(v) if type(v) is str and v.isascii() else None


def _int(v) -> str | None:
    return str(v) if type(v) is int else None


def _state(v) -> str | None:
    return encode_basestring(v.value) if type(v) is ProposalState else None


def _or_null(write):
    return lambda v: "null" if v is None else write(v)


_TAIL_ORDER = tuple(_FIELDS[_FIELDS.index("analysis") + 1:])
_TAIL_WRITERS = {"lot": _float, "created_at": _float, "expires_at": _float, "state": _state,
                 "decided_by": _or_null(_str), "decided_at": _or_null(_float), "ticket": _or_null(_int),
                 "fill_price": _or_null(_float), "message": _str}
_TAIL_KEYS = tuple((name, f'"{name}":', _TAIL_WRITERS[name]) for name in _TAIL_ORDER) \
    if set(_TAIL_WRITERS) == set(_TAIL_ORDER) else ()


def tail_json(p: TradeProposal) -> str:
    """`p.model_dump_json(include=TAIL)`, byte for byte, written directly when every tail value is of a type
    validation gives it (~1 µs instead of ~2.5)."""
    d = p.__dict__
    parts = []
    for name, key, write in _TAIL_KEYS:
        text = write(d[name])
        if text is None:
            return p.model_dump_json(include=TAIL)
        parts.append(key + text)
    return "{" + ",".join(parts) + "}" if parts else p.model_dump_json(include=TAIL)


def with_new_tail(old_text: str, old: TradeProposal, new: TradeProposal, old_tail: str | None = None
                  ) -> tuple[str, str | None]:
    """`row_text(new)` for a `new` that differs from `old` (the parse of `old_text`) only in tail fields, and
    `new`'s serialised tail (None after a full dump). `old_tail`: `old`'s serialised tail if known.

    Falls back to the full dump when the stored text does not end in `old`'s serialised tail (a text
    some other writer formatted differently)."""
    if old_tail is None:
        old_tail = tail_json(old)
    n = len(old_tail) - 1  # the tail's fields and the closing brace, without its opening one
    if len(old_text) > n and old_text[-n - 1] == "," and old_text.endswith(old_tail[1:]):
        new_tail = tail_json(new)
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
