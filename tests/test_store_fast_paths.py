"""The store's short cuts must be invisible: single-statement writes, the proposal's re-serialised tail, the
proposals of one analysis dumped and parsed once, the parse cache filled at creation."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from collections import Counter

import pytest

from core.domain.clock import FixedClock
from core.domain.models import FilterResult, StrategyScore, TradeProposal
from core.domain.models import ProposalState as S
from core.store import DuplicateTradeError, Store, StoreError, TransactionMisuse, new_proposal_id
from core.store.proposal_rows import row_text
from core.store.proposals import _ALPHABET, PROPOSAL_ID_LEN
from tests.store_helpers import T0, make_closed, make_proposal, make_trade


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "s.sqlite", FixedClock(T0))
    yield s
    s.close()


def _raw(store: Store, pid: str) -> str:
    """The proposal's own row text (its analysis is in the analyses row)."""
    return store.db.conn.execute("SELECT data FROM proposals WHERE id=?", (pid,)).fetchone()["data"]


def _whole(store: Store, pid: str) -> TradeProposal:
    """The reference read: the parse of the proposal's whole JSON, as one text, put together from its rows."""
    text, analysis = store.db.conn.execute(
        "SELECT p.data, a.data FROM proposals p JOIN analyses a ON a.id = p.analysis_id WHERE p.id=?", (pid,)
    ).fetchone()
    return TradeProposal.from_json(f'{text[:-1]},"analysis":{analysis}}}')


def _insert_foreign(conn, p: TradeProposal, text: str, analysis_text: str, state: str = "pending") -> None:
    """Rows as another writer may have formatted them (another tool, an older version)."""
    conn.execute("INSERT INTO analyses(id, data) VALUES (?,?)", (p.id, analysis_text))
    conn.execute(
        "INSERT INTO proposals(id, symbol, strategy, state, created_at, expires_at, updated_at, analysis_id, data)"
        " VALUES (?,?,?,?,?,?,?,?,?)", (p.id, p.symbol, p.strategy.strategy, state, T0, T0 + 120, T0, p.id, text))


def test_every_letter_at_every_position_of_an_id():
    ids = [new_proposal_id() for _ in range(4000)]
    assert all(len(i) == PROPOSAL_ID_LEN for i in ids)
    for pos in range(PROPOSAL_ID_LEN):
        seen = Counter(i[pos] for i in ids)
        assert set(seen) == set(_ALPHABET)
        assert min(seen.values()) > 4000 / 32 / 2  # roughly uniform, not a stuck or folded bit


def test_transitions_store_exactly_the_full_dump(store):
    p = store.proposals.create(make_proposal("tail1"))
    assert _raw(store, p.id) == row_text(p)
    assert store.db.conn.execute("SELECT data FROM analyses WHERE id='tail1'").fetchone()[0] == p.analysis.to_json()
    steps = [(S.PENDING, S.APPROVED, {"decided_by": 'trader "7" ✓', "decided_at": T0 + 1.25}),
             (S.APPROVED, S.EXECUTING, {}),
             (S.EXECUTING, S.FAILED, {"message": 'no fill, "requote", 1/3 — ,"lot":9}'})]
    for frm, to, fields in steps:
        assert store.proposals.transition(p.id, frm, to, **fields)
        whole = _whole(store, p.id)
        assert _raw(store, p.id) == row_text(whole)
        assert store.proposals.get(p.id) == whole
    got = store.proposals.get(p.id)
    assert (got.state, got.decided_by, got.message) == (S.FAILED, 'trader "7" ✓', steps[2][2]["message"])
    assert got.analysis == p.analysis and got.strategy == p.strategy


def test_a_row_another_writer_formatted_is_transitioned_correctly(store):
    p = make_proposal("foreign1")
    whole = p.to_dict()
    analysis = whole.pop("analysis")
    _insert_foreign(store.db.conn, p, json.dumps(whole, indent=1), json.dumps(analysis, indent=2))
    assert store.proposals.get(p.id) == p
    assert store.proposals.transition(p.id, S.PENDING, S.REJECTED, decided_by="9")
    want = p.model_copy(update={"state": S.REJECTED, "decided_by": "9"})
    assert _whole(store, p.id) == want == store.proposals.get(p.id)
    assert _raw(store, p.id) == row_text(want)


def test_created_proposals_read_back_as_the_parse_of_their_row(store):
    base = make_proposal("made1")
    odd = FilterResult(name="x", passed=True, reason="", details={"pair": (1, 2), "tags": ("a",)})
    analysis = base.analysis.model_copy(update={"filters": [odd]})
    other = StrategyScore(**{**base.strategy.model_dump(), "strategy": "bb_fade"})
    ps = [base.model_copy(update={"analysis": analysis}),
          base.model_copy(update={"id": "made2", "analysis": analysis, "strategy": other})]
    assert store.proposals.create_many(ps) == ps
    assert store.db.conn.execute("SELECT COUNT(*) FROM analyses").fetchone()[0] == 1  # one row for both
    for p in ps:
        assert _raw(store, p.id) == row_text(p)
        got = store.proposals.get(p.id)
        assert got == _whole(store, p.id)
        # what a parse gives, not the caller's object: JSON has no tuples
        assert got.analysis.filters[0].details == {"pair": [1, 2], "tags": ["a"]}
        assert got.analysis is not analysis


def test_a_failed_create_many_writes_nothing(store):
    store.proposals.create(make_proposal("dup1"))
    with pytest.raises(sqlite3.IntegrityError):
        store.proposals.create_many([make_proposal("fresh1"), make_proposal("dup1")])
    assert store.proposals.get("fresh1") is None


def test_single_statement_writes_commit_alone_or_with_the_enclosing_transaction(store, tmp_path):
    other = sqlite3.connect(tmp_path / "s.sqlite")  # another process' view: only committed rows
    store.trades.add(make_trade(1))
    assert other.execute("SELECT COUNT(*) FROM active_trades").fetchone()[0] == 1
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.trades.add(make_trade(2))
            assert other.execute("SELECT COUNT(*) FROM active_trades").fetchone()[0] == 1
            raise RuntimeError("step failed")
    assert store.trades.tickets() == {1}
    with store.transaction():  # a refused statement undoes itself only, like the savepoint it replaced
        store.trades.add(make_trade(3))
        with pytest.raises(DuplicateTradeError):
            store.trades.add(make_trade(1))
        store.journal.append("opened", ticket=3)
    assert store.trades.tickets() == {1, 3} and store.journal.count() == 1
    other.close()


def test_a_write_from_another_task_during_an_open_transaction_is_refused(store):
    async def main():
        with store.transaction():
            async def intruder():
                store.journal.append("opened", ticket=5)
            with pytest.raises(TransactionMisuse):
                await asyncio.create_task(intruder())

    asyncio.run(main())
    assert store.journal.count() == 0


def test_remove_json_and_record_close_with_or_without_metadata(store):
    t = store.trades.add(make_trade(41))
    assert json.loads(store.trades.remove_json(41))["ticket"] == 41
    assert store.trades.remove_json(41) is None
    t = store.trades.add(make_trade(42))
    assert store.record_close(make_closed(t))  # no metadata on the close: taken from the active row
    assert store.closed.get(42).metadata["strategy"] == "vwap_reversion"
    t = store.trades.add(make_trade(43))
    assert store.record_close(make_closed(t).model_copy(update={"metadata": {"strategy": "own"}}))
    assert store.closed.get(43).metadata == {"strategy": "own"} and store.trades.get(43) is None


def test_move_returns_what_it_wrote_and_only_to_the_winner(store):
    p = store.proposals.create(make_proposal("move1"))
    won = store.proposals.move(p.id, S.PENDING, S.APPROVED, decided_by="3")
    assert won == store.proposals.get(p.id) and (won.state, won.decided_by) == (S.APPROVED, "3")
    assert store.proposals.move(p.id, S.PENDING, S.REJECTED) is None
    won.message = "the caller's own copy"
    assert store.proposals.get(p.id).message == ""


def test_create_many_of_nothing_writes_nothing(store):
    assert store.proposals.create_many([]) == []
    assert store.proposals.list() == []


def test_a_single_write_blocked_by_another_process_says_so_like_a_transaction(tmp_path):
    s = Store(tmp_path / "busy.sqlite", FixedClock(T0))
    other = sqlite3.connect(tmp_path / "busy.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        s.db.conn.execute("PRAGMA busy_timeout=50")
        with pytest.raises(StoreError, match="cannot start a store transaction"):
            s.journal.append("opened", ticket=1)
        with pytest.raises(StoreError, match="cannot start a store transaction"):
            with s.transaction():
                pass
    finally:
        other.execute("ROLLBACK")
        other.close()
    s.journal.append("opened", ticket=1)
    assert s.journal.count() == 1
    s.close()


def test_the_kill_switch_is_read_from_its_row_every_time(store, tmp_path):
    from core.store.state import KillSwitchState

    assert not store.kill_switch.get().blocking
    store.kill_switch.set(KillSwitchState(paused=True, by="7"), "pause", by="7")
    first = store.kill_switch.get()
    assert first.paused and first.by == "7"
    first.paused = False  # the caller's copy: the next read is not changed by it
    assert store.kill_switch.get().paused and store.kill_switch.blocking() is True
    assert store.kill_switch.emergency() == (False, "7")
    other = sqlite3.connect(tmp_path / "s.sqlite")  # another process resumes us
    other.execute("UPDATE kill_switch SET data=? WHERE id=1", (KillSwitchState(by="9").model_dump_json(),))
    other.commit()
    other.close()
    now = store.kill_switch.get()
    assert not now.blocking and now.by == "9"
    assert store.kill_switch.emergency() == (False, "9") and store.kill_switch.blocking() is False


def test_a_transition_after_create_many_and_after_another_writer_keeps_the_full_dump(store, tmp_path):
    base = make_proposal("memo1")
    ps = [base, base.model_copy(update={"id": "memo2"})]
    store.proposals.create_many(ps)
    assert store.proposals.transition("memo1", S.PENDING, S.APPROVED, decided_by="x" * 40)
    assert _raw(store, "memo1") == row_text(store.proposals.get("memo1"))
    other = sqlite3.connect(tmp_path / "s.sqlite")  # another process decides memo2 meanwhile (its own text)
    want = ps[1].model_copy(update={"state": S.APPROVED, "decided_by": "elsewhere", "message": "m"})
    other.execute("UPDATE proposals SET state='approved', data=? WHERE id='memo2'", (json.dumps(json.loads(row_text(want)), indent=1),))
    other.commit()
    other.close()
    assert store.proposals.transition("memo2", S.APPROVED, S.FAILED, message="short")
    got = store.proposals.get("memo2")
    assert _raw(store, "memo2") == row_text(got) and got == _whole(store, "memo2")
    assert (got.state, got.decided_by, got.message) == (S.FAILED, "elsewhere", "short")


def test_a_move_skips_the_read_only_while_the_row_is_exactly_the_remembered_text(store, tmp_path):
    """The move writes WHERE data = the text this repo remembers; a row another writer changed in the same
    state, or a remembered write that was rolled back, is read and moved as stored."""
    store.proposals.create_many([make_proposal("skip1"), make_proposal("skip2")])
    other = sqlite3.connect(tmp_path / "s.sqlite")  # still pending, but decided_by written elsewhere
    want = store.proposals.get("skip1").model_copy(update={"decided_by": "elsewhere"})
    other.execute("UPDATE proposals SET data=? WHERE id='skip1'", (row_text(want),))
    other.commit()
    other.close()
    assert store.proposals.transition("skip1", S.PENDING, S.APPROVED)
    got = store.proposals.get("skip1")
    assert (got.state, got.decided_by) == (S.APPROVED, "elsewhere") and _raw(store, "skip1") == row_text(got)

    with pytest.raises(RuntimeError), store.transaction():  # remembered, then rolled back
        assert store.proposals.transition("skip2", S.PENDING, S.APPROVED, decided_by="gone")
        raise RuntimeError
    assert store.proposals.transition("skip2", (S.PENDING, S.APPROVED), S.EXPIRED, message="expired")
    got = store.proposals.get("skip2")
    assert (got.state, got.decided_by, got.message) == (S.EXPIRED, None, "expired")
    assert _raw(store, "skip2") == row_text(got) and got == _whole(store, "skip2")


def test_a_move_with_bad_fields_still_loses_first_to_a_row_in_another_state(store, tmp_path):
    store.proposals.create(make_proposal("bad1"))
    other = sqlite3.connect(tmp_path / "s.sqlite")
    other.execute("UPDATE proposals SET state='rejected' WHERE id='bad1'")
    other.commit()
    other.close()
    assert store.proposals.move("bad1", S.PENDING, S.APPROVED, decided_at="not a time") is None


def test_a_proposal_read_from_its_two_rows_is_the_parse_of_its_whole_json(store):
    """`compose` builds the proposal without validating it again: exact only while TradeProposal has no
    validators of its own, and while each field's parse alone is what the whole parse gives."""
    from core.domain.models import AnalysisResult
    from core.store.proposal_rows import compose

    decorators = TradeProposal.__pydantic_decorators__
    assert not any(getattr(decorators, f.name) for f in dataclasses.fields(decorators))
    base = make_proposal("whole1")
    odd = FilterResult(name="x", passed=True, reason='"é"', details={"inf": float("inf"), "nan": float("nan"),
                                                                      "neg0": -0.0, "pair": (1, 2), "big": 2**70})
    variants = [
        base,
        base.model_copy(update={"id": "whole2", "lot": 1, "ticket": None, "fill_price": float("inf"),
                                "analysis": base.analysis.model_copy(update={"filters": [odd]})}),
        base.model_copy(update={"id": "whole3", "state": S.EXECUTED, "ticket": 12, "decided_at": 5,
                                "message": 'a "quote" ✓ ,"lot":9}'}),
    ]
    for p in variants:
        want = TradeProposal.from_json(p.to_json())
        got = compose(row_text(p), AnalysisResult.from_json(p.analysis.to_json()))
        assert got.to_json() == want.to_json() and got.model_fields_set == want.model_fields_set
        assert [type(v) for v in got.__dict__.values()] == [type(v) for v in want.__dict__.values()]
        store.proposals.create(p)
        assert store.proposals.get(p.id).to_json() == want.to_json() == _whole(store, p.id).to_json()


def test_a_new_row_is_dumped_once_and_its_tail_cut_from_it():
    """`new_rows` stores `row_text(p)` and cuts the tail from it (`tail_of`): the same text as the head and the
    tail dumped apart and joined, and the same tail, with strings that contain the tail's first key and quotes."""
    from core.store.proposal_rows import _HEAD, TAIL, new_rows, tail_of

    base = make_proposal("cut1")
    tricky = 'x ,"lot":9} ,\\"lot\\": "é" ✓'
    strat = base.strategy.model_copy(update={"reason": tricky, "strategy": ',"lot":1'})
    variants = [
        base,
        base.model_copy(update={"id": "cut2", "strategy": strat, "message": tricky, "lot": 1, "ticket": 7,
                                "fill_price": float("nan"), "decided_at": -0.0, "decided_by": ',"lot":'}),
        base.model_copy(update={"id": "cut3", "lot": float("inf"), "state": S.FAILED, "message": ""}),
    ]
    for p in variants:
        head, tail = p.model_dump_json(include=_HEAD), p.model_dump_json(include=TAIL)
        text, _, parsed, got_tail = new_rows(p, {})
        assert text == f"{head[:-1]},{tail[1:]}" == row_text(p)
        assert got_tail == tail == tail_of(text)
        assert parsed.to_json() == TradeProposal.from_json(p.to_json()).to_json()
    # the cut is exact only while every tail field is a scalar (a nested value could hold the key unescaped)
    import typing

    scalars = {float, int, str, type(None), S}
    for name in TAIL:
        ann = TradeProposal.model_fields[name].annotation
        assert set(typing.get_args(ann) or (ann,)) <= scalars, name
