"""The journal's and the close's short cuts write exactly what the validated slow path wrote.

`JournalRepo` skips `JournalEntry`'s validation when every value already has the exact type it leaves
unchanged; `Store.record_close` learns from its DELETE whether the ticket is closed already. The references
below are the code before those short cuts, kept here verbatim, and the rows are compared byte for byte
(with SQLite's storage class of every column), as are the errors for bad input.
"""
from __future__ import annotations

import datetime
import decimal
import json
import math
import sqlite3
from enum import Enum

import numpy as np
import pytest

from core.domain.clock import FixedClock
from core.domain.models import ActiveTrade, Direction
from core.store import Store
from core.store.journal import JournalEntry, TradeMetadata
from tests.store_helpers import T0, make_closed, make_trade

_COLS = "ts, typeof(ts), event, ticket, typeof(ticket), proposal_id, symbol, data"


class _Str(str):
    """A str subclass: not the exact type the fast path takes, so the model must judge it."""


class _Key(str, Enum):
    A = "a_key"


def _old_append(store: Store, event, *, ticket=None, proposal_id=None, symbol=None, metadata=None, data=None,
                ts=None) -> JournalEntry:
    """`JournalRepo.append` before the fast path, verbatim."""
    meta = metadata.model_dump() if isinstance(metadata, TradeMetadata) else dict(metadata or {})
    entry = JournalEntry(
        ts=store.clock.now() if ts is None else ts, event=event, ticket=ticket, proposal_id=proposal_id,
        symbol=symbol, metadata=meta, data=dict(data or {}),
    )
    payload = json.dumps({"metadata": entry.metadata, "data": entry.data}, sort_keys=True, default=str)
    cur = store.db.write(
        "INSERT INTO journal(ts, event, ticket, proposal_id, symbol, data) VALUES (?,?,?,?,?,?)",
        (entry.ts, entry.event, entry.ticket, entry.proposal_id, entry.symbol, payload),
    )
    entry.id = int(cur.lastrowid)
    return entry


def _old_record_close(store: Store, closed, data=None) -> bool:
    """`Store.record_close` before the DELETE answered the `has`, verbatim (with the old `append`)."""
    with store.db.transaction():
        active = store.trades.remove_json(closed.ticket)
        if store.closed.has(closed.ticket):
            return False
        meta = closed.metadata or (
            TradeMetadata.from_trade(ActiveTrade.from_json(active)).model_dump() if active else {})
        if not closed.metadata and meta:
            closed = closed.model_copy(update={"metadata": meta})
        store.closed.add(closed)
        _old_append(
            store, "closed", ticket=closed.ticket, proposal_id=closed.proposal_id, symbol=closed.symbol,
            metadata=meta,
            data={"exit_price": closed.exit_price, "pnl": closed.pnl, "r_multiple": closed.r_multiple,
                  "exit_reason": closed.exit_reason, "mfe_r": closed.mfe_r, "mae_r": closed.mae_r,
                  "commission": closed.commission, **(data or {})},
            ts=closed.exit_time,
        )
    return True


@pytest.fixture
def pair():
    new, old = Store(":memory:", FixedClock(T0)), Store(":memory:", FixedClock(T0))
    yield new, old
    new.close()
    old.close()


def _rows(store: Store, table: str) -> list[tuple]:
    cols = {"journal": _COLS, "active_trades": "*", "closed_trades": "*"}[table]
    return [tuple(r) for r in store.db.conn.execute(f"SELECT {cols} FROM {table} ORDER BY rowid")]


def _outcome(fn):
    try:
        return ("ok", fn())
    except Exception as e:  # noqa: BLE001 - the comparison is the point
        return ("error", type(e), str(e))


_ODD_META = TradeMetadata(strategy="s", range_high=2.0, extra_np=np.float64(1.5), nested={"x": {"y": [1, 2.5]}})
_CASES: list[dict] = [
    {"event": "opened", "ticket": 7, "proposal_id": "p1", "symbol": "XAUUSDc", "ts": T0 + 0.5,
     "metadata": {"trade_type": "range_scalp", "strategy": "vwap", "range_high": 2639.92, "session": "london"},
     "data": {"direction": "short", "entry": 2638.84, "lot": 0.01, "magic": 730125, "notes": []}},
    {"event": "sl_moved", "ticket": 8, "metadata": _ODD_META, "data": {"sl": 1.0}},  # ts from the clock
    {"event": "closed", "ticket": 9, "ts": T0, "metadata": {"nan": math.nan, "inf": math.inf, "ninf": -math.inf,
                                                             "neg0": -0.0, "big": 2**70, "t": True, "none": None}},
    {"event": "partial", "data": {"np": np.float64(0.1) * 3, "npi": np.int64(4), "np32": np.float32(0.1),
                                  "arr": np.arange(3), "nested": {"b": {"z": 1, "a": (1, 2)}, 3: "int key inside"},
                                  "dt": datetime.datetime(2024, 1, 2, 3, 4, 5), "dec": decimal.Decimal("1.10"),
                                  "set": {3}, "enum": Direction.LONG, "bytes": b"x", "é ✓": '"quote" \\ \n',
                                  "\ud800": "lone surrogate key"}},
    {"event": "adopted", "metadata": {_Key.A: 1, "b": 2}, "ts": T0},  # a str-enum key becomes its value
    {"event": "opened", "ts": 5, "ticket": True},  # an int ts becomes a float, a bool ticket an int
    {"event": "closed", "ts": 5, "ticket": 1},
    {"event": "closed", "ts": np.float64(T0), "ticket": 1},
    {"event": "opened", "ts": T0, "ticket": np.int64(3)},
    {"event": "opened", "ts": T0, "ticket": False, "symbol": "x"},
    {"event": "tp_moved", "ts": np.float64(T0 + 1.25), "ticket": np.int64(12), "symbol": _Str("BTCUSDc")},
    {"event": "exit_failed", "ts": "1700000000.5", "proposal_id": _Str("p2"), "data": {_Str("k"): 1.0}},
    {"event": _Str("closed"), "ticket": 3, "ts": T0, "metadata": [("strategy", "pairs")], "data": ()},
    {"event": "opened", "ts": T0, "ticket": 4.0, "metadata": {}, "data": None},
]
_BAD: list[dict] = [
    {"event": "reopened", "ts": T0},  # not a journal event
    {"event": Direction.LONG, "ts": T0},
    {"event": "opened", "ts": T0, "metadata": {1: "int key"}},
    {"event": "opened", "ts": T0, "data": {("a",): 1}},
    {"event": "opened", "ts": T0, "ticket": "seven"},
    {"event": "opened", "ts": math.nan},  # NaN is stored as NULL: the NOT NULL column refuses it
    {"event": "opened", "ts": T0, "data": {"x": [1, {2: 3, "a": 4}]}},  # keys that sort_keys cannot order
    {"event": "opened", "ts": T0, "data": {"loop": None}},
]
_BAD[-1]["data"]["loop"] = _BAD[-1]["data"]  # a circular value


@pytest.mark.parametrize("case", _CASES + _BAD)
def test_append_writes_and_returns_what_the_validated_path_did(pair, case):
    new, old = pair
    got = _outcome(lambda: new.journal.append(**case))
    want = _outcome(lambda: _old_append(old, **case))
    assert got[0] == want[0]
    if want[0] == "error":
        assert got[1:] == want[1:]
    else:
        g, w = got[1], want[1]
        assert g.model_dump() == w.model_dump() and g.model_fields_set == w.model_fields_set
        assert [type(v) for v in g.__dict__.values()] == [type(v) for v in w.__dict__.values()]
        assert [type(k) for k in g.metadata] == [type(k) for k in w.metadata]
    assert _rows(new, "journal") == _rows(old, "journal")


@pytest.mark.parametrize("case", _CASES + _BAD)
def test_add_writes_the_row_append_writes_and_refuses_what_it_refuses(pair, case):
    new, old = pair
    got = _outcome(lambda: new.journal.add(**case))
    want = _outcome(lambda: _old_append(old, **case))
    assert got[0] == want[0]
    if want[0] == "error":
        assert got[1:] == want[1:]
    assert _rows(new, "journal") == _rows(old, "journal")


def test_the_fast_path_is_taken_for_plain_values_and_keeps_no_reference_to_the_callers_dicts(pair, monkeypatch):
    new, _ = pair
    meta, data = {"strategy": "s"}, {"sl": 1.0}
    entry = new.journal.append("opened", ticket=1, metadata=meta, data=data, ts=T0)
    assert entry.metadata == meta and entry.metadata is not meta and entry.data is not data
    import core.store.journal as journal

    class Refusing(JournalEntry):
        def __init__(self, **_):
            raise AssertionError("validated although every value was plain")

    monkeypatch.setattr(journal, "JournalEntry", Refusing)
    new.journal.append("opened", ticket=2, metadata=meta, data=data, ts=T0)
    new.journal.add("closed", ticket=2, metadata=meta, data=data, ts=T0)
    with pytest.raises(AssertionError, match="validated"):  # an int ts takes the validated path
        new.journal.add("closed", ticket=2, ts=5)
    assert new.journal.count() == 3


def _close_sequence(store: Store, record_close) -> list:
    """Closes that take every branch: with and without metadata, with and without the active row, twice,
    a close that fails (NaN P&L: NOT NULL) first time and after it is recorded."""
    out = []
    for ticket in (1, 2, 3, 4):
        store.trades.add(make_trade(ticket, proposal_id=f"p{ticket}"))
    t1, t2 = store.trades.get(1), store.trades.get(2)
    c1 = make_closed(t1).model_copy(update={"metadata": {"strategy": "own", "x": np.float64(2.5)}})
    c2 = make_closed(t2)  # no metadata: taken from the active row
    c3 = make_closed(store.trades.get(3)).model_copy(update={"metadata": {"k": 1}})
    c4 = make_closed(store.trades.get(4))
    c5 = make_closed(make_trade(5))  # never registered: no active row
    for c, data in ((c1, {"reason_text": "tp"}), (c2, None), (c5, {"n": math.nan}), (c1, None), (c2, None),
                    (c5, None)):
        out.append(_outcome(lambda c=c, data=data: record_close(store, c, data)))
    store.trades.add(make_trade(1))  # recovery: the ticket came back as active although it is closed
    out.append(_outcome(lambda: record_close(store, c1.model_copy(update={"metadata": {}}))))
    store.trades.add(make_trade(2))
    out.append(_outcome(lambda: record_close(store, c2.model_copy(update={"metadata": {"m": 1}}))))
    bad3, bad4 = c3.model_copy(update={"pnl": math.nan}), c4.model_copy(update={"pnl": math.nan})
    out.append(_outcome(lambda: record_close(store, bad3)))  # refused: nothing written, trade still active
    out.append(_outcome(lambda: record_close(store, bad4)))
    out.append(_outcome(lambda: record_close(store, c3)))
    out.append(_outcome(lambda: record_close(store, bad3)))  # already closed: False, as before
    unserialisable = c4.model_copy(update={"metadata": {"obj": object()}})
    out.append(_outcome(lambda: record_close(store, unserialisable)))
    out.append(_outcome(lambda: record_close(store, c4)))
    out.append(_outcome(lambda: record_close(store, unserialisable)))
    return out


def test_record_close_writes_and_answers_what_it_did_with_the_separate_has(pair):
    new, old = pair
    got = _close_sequence(new, lambda s, c, d=None: s.record_close(c, d))
    want = _close_sequence(old, _old_record_close)
    assert [o[0] for o in got].count("error") == 3
    assert got == want
    for table in ("active_trades", "closed_trades", "journal"):
        assert _rows(new, table) == _rows(old, table), table


def test_remove_closing_answers_like_remove_json_and_has(pair):
    store, _ = pair
    assert store.trades.remove_closing(1, want_data=True) is None
    t = store.trades.add(make_trade(1))
    assert store.trades.remove_closing(1, want_data=True) == (t.to_json(), False)
    store.trades.add(make_trade(1))
    assert store.trades.remove_closing(1, want_data=False) == (None, False)
    store.closed.add(make_closed(t))
    store.trades.add(make_trade(1))
    assert store.trades.remove_closing(1, want_data=False) == (None, True)
    store.trades.add(make_trade(1))
    assert store.trades.remove_closing(1, want_data=True) == (t.to_json(), True)
    assert store.trades.get(1) is None


def test_a_failing_close_rolls_back_the_delete(tmp_path):
    with Store(tmp_path / "s.sqlite", FixedClock(T0)) as store:
        t = store.trades.add(make_trade(1))
        with pytest.raises(sqlite3.IntegrityError):
            store.record_close(make_closed(t).model_copy(update={"metadata": {"a": 1}, "pnl": math.nan}))
        assert store.trades.get(1) == t and store.closed.count() == 0 and store.journal.count() == 0


def test_the_lifecycle_steps_journal_the_rows_the_old_append_wrote(pair):
    """record_open / record_adopted journal through `add`; the same steps through the old `append` (patched in)
    write the same rows in every table."""
    from core.domain.models import ProposalState
    from tests.store_helpers import make_proposal

    new, old = pair
    old.journal.add = lambda event, **kw: _old_append(old, event, **kw)
    for store in pair:
        p = store.proposals.create(make_proposal("life1"))
        store.proposals.transition(p.id, ProposalState.PENDING, ProposalState.EXECUTING)
        store.record_open(make_trade(1, p.id), metadata={"strategy": "s", "x": np.float64(0.5), "n": math.nan},
                          data={"notes": ["a", ("t", 1)], "odd": {"k": decimal.Decimal("2.50")}})
        store.record_open(make_trade(2), metadata=TradeMetadata(strategy="t", extra={"é": [1.5]}))
        store.record_open(make_trade(3))  # metadata from the trade
        store.record_adopted(make_trade(4).model_copy(update={"metadata": {"range_high": 5, "session": "ny"}}),
                             data={"why": "orphan"})
        store.record_trade_event(3, lambda t: None, "sl_moved", data={"sl": 98.9})
    for table in ("active_trades", "journal", "proposals"):
        cols = "*" if table != "journal" else _COLS
        a = [tuple(r) for r in new.db.conn.execute(f"SELECT {cols} FROM {table} ORDER BY rowid")]
        b = [tuple(r) for r in old.db.conn.execute(f"SELECT {cols} FROM {table} ORDER BY rowid")]
        assert a == b and a, table
