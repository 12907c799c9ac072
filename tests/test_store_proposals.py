"""The proposal state machine: legal/illegal moves, compare-and-set under concurrency, expiry, ids."""
from __future__ import annotations

import asyncio
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from core.domain.clock import FixedClock
from core.domain.models import ProposalState as S
from core.store import ALLOWED_TRANSITIONS, IllegalTransition, Store, is_valid_proposal_id, new_proposal_id
from tests.store_helpers import T0, make_proposal


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "s.sqlite", FixedClock(T0))
    yield s
    s.close()


def test_ids_are_short_unique_and_fit_callback_data_and_order_comments():
    ids = {new_proposal_id() for _ in range(5000)}
    assert len(ids) == 5000
    for pid in list(ids)[:200]:
        assert len(pid) <= 16 and is_valid_proposal_id(pid)
        assert len(f"approve:{pid}".encode()) <= 64
        assert len(f"rs:{pid}") <= 31
    assert not is_valid_proposal_id("has space")
    assert not is_valid_proposal_id("x" * 17)


def test_round_trip_and_create_rejects_bad_or_duplicate_ids(store):
    p = make_proposal("abc123")
    store.proposals.create(p)
    assert store.proposals.get("abc123") == p
    with pytest.raises(sqlite3.IntegrityError):
        store.proposals.create(p)
    with pytest.raises(ValueError):
        store.proposals.create(make_proposal("bad id!"))
    assert store.proposals.get("nope") is None


def test_happy_path_and_fields(store):
    p = store.proposals.create(make_proposal("happy1"))
    assert store.proposals.transition(p.id, S.PENDING, S.APPROVED, decided_by="42", decided_at=T0 + 3)
    assert store.proposals.transition(p.id, S.APPROVED, S.EXECUTING)
    assert store.proposals.transition(p.id, S.EXECUTING, S.EXECUTED, ticket=555, fill_price=99.31)
    got = store.proposals.get(p.id)
    assert (got.state, got.decided_by, got.decided_at, got.ticket, got.fill_price) == (S.EXECUTED, "42", T0 + 3, 555,
                                                                                        99.31)


def test_cas_miss_returns_false_and_changes_nothing(store):
    p = store.proposals.create(make_proposal("cas1"))
    assert store.proposals.transition(p.id, S.PENDING, S.REJECTED, decided_by="1")
    assert not store.proposals.transition(p.id, S.PENDING, S.APPROVED, decided_by="2")
    got = store.proposals.get(p.id)
    assert got.state is S.REJECTED and got.decided_by == "1"
    assert not store.proposals.transition("missing", S.PENDING, S.APPROVED)


@pytest.mark.parametrize("frm", list(S))
def test_every_illegal_transition_raises(store, frm):
    for to in S:
        if to in ALLOWED_TRANSITIONS[frm]:
            continue
        with pytest.raises(IllegalTransition):
            store.proposals.transition("whatever", frm, to)


def test_terminal_states_have_no_exits():
    for s in S:
        assert (not ALLOWED_TRANSITIONS[s]) == s.terminal


def test_unknown_fields_and_bad_values_are_refused(store):
    p = store.proposals.create(make_proposal("fld1"))
    with pytest.raises(ValueError):
        store.proposals.transition(p.id, S.PENDING, S.APPROVED, state="executed")
    with pytest.raises(ValueError):
        store.proposals.transition(p.id, S.PENDING, S.APPROVED, ticket="not a number")
    assert store.proposals.get(p.id).state is S.PENDING


def test_expire_due(store):
    a = store.proposals.create(make_proposal("exp1", created_at=T0, expiry=120))
    b = store.proposals.create(make_proposal("exp2", created_at=T0 + 100, expiry=120))
    c = store.proposals.create(make_proposal("exp3", created_at=T0, expiry=120))
    store.proposals.transition(c.id, S.PENDING, S.REJECTED)
    assert store.proposals.expire_due(T0 + 121) == [a.id]
    assert store.proposals.get(b.id).state is S.PENDING
    assert store.proposals.get(c.id).state is S.REJECTED
    assert not store.proposals.transition(a.id, S.PENDING, S.APPROVED)  # a late tap loses
    assert [p.id for p in store.proposals.list(states=[S.PENDING])] == [b.id]


def test_double_tap_from_many_threads_approves_exactly_once(store):
    ids = [store.proposals.create(make_proposal()).id for _ in range(20)]
    barrier = threading.Barrier(8)

    def tap(user):
        barrier.wait()
        return [pid for pid in ids if store.proposals.transition(pid, S.PENDING, S.APPROVED, decided_by=str(user))]

    with ThreadPoolExecutor(8) as ex:
        wins = list(ex.map(tap, range(8)))
    all_wins = [pid for w in wins for pid in w]
    assert sorted(all_wins) == sorted(ids)  # each approved once, by exactly one tapper
    for pid in ids:
        p = store.proposals.get(pid)
        assert p.state is S.APPROVED
        assert any(pid in w for u, w in enumerate(wins) if str(u) == p.decided_by)


async def test_concurrent_approvals_from_asyncio_and_threads_execute_once(store):
    ids = [store.proposals.create(make_proposal()).id for _ in range(30)]
    executed: list[str] = []
    lock = threading.Lock()

    def approve_and_execute(pid):
        if not store.proposals.transition(pid, S.PENDING, S.APPROVED):
            return
        if store.proposals.transition(pid, S.APPROVED, S.EXECUTING):
            with lock:
                executed.append(pid)  # the "order send"

    async def on_loop(pid):
        await asyncio.sleep(0)
        approve_and_execute(pid)

    jobs = []
    for pid in ids:
        jobs += [asyncio.to_thread(approve_and_execute, pid), on_loop(pid), asyncio.to_thread(approve_and_execute, pid)]
    await asyncio.gather(*jobs)
    assert sorted(executed) == sorted(ids)


def test_random_transition_sequences_match_the_reference_machine(tmp_path):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    store = Store(tmp_path / "h.sqlite", FixedClock(T0))
    counter = iter(range(10**6))
    step = st.tuples(st.sets(st.sampled_from(list(S)), min_size=1, max_size=3), st.sampled_from(list(S)))

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(step, min_size=1, max_size=8))
    def run(steps):
        pid = f"h{next(counter)}"
        store.proposals.create(make_proposal(pid))
        state = S.PENDING
        for froms, to in steps:
            legal = all(to in ALLOWED_TRANSITIONS[f] for f in froms)
            if not legal:
                with pytest.raises(IllegalTransition):
                    store.proposals.transition(pid, froms, to)
                continue
            won = store.proposals.transition(pid, froms, to)
            assert won == (state in froms)
            if won:
                state = to
            assert store.proposals.get(pid).state is state

    run()
    store.close()
