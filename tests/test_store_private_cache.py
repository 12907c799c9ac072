"""A private (`:memory:`) store answers the kill switch and the expiry check from memory: it must answer exactly
what reading the rows answers, through writes, rollbacks (whole and to a savepoint) and threads."""
from __future__ import annotations

import contextlib
import random
import re
import threading
from pathlib import Path

import pytest

from core.domain.clock import FixedClock
from core.domain.models import ProposalState as S
from core.store import Store
from core.store.state import KillSwitchState
from tests.store_helpers import T0, make_proposal

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def mem():
    s = Store(":memory:", FixedClock(T0))
    assert s.db.private
    yield s
    s.close()


def _row_state(store: Store) -> KillSwitchState:
    row = store.db.conn.execute("SELECT data FROM kill_switch WHERE id=1").fetchone()
    return KillSwitchState() if row is None else KillSwitchState.model_validate_json(row["data"])


def _agrees(store: Store) -> KillSwitchState:
    """`get()` is the row's parse, and the copy-free answers (`emergency`, `blocking`) are get()'s."""
    ks = store.kill_switch
    got = ks.get()
    assert got == _row_state(store)
    assert ks.emergency() == (got.emergency, got.by) and ks.blocking() is got.blocking
    return got


def _due(store: Store, now: float) -> set[str]:
    rows = store.db.conn.execute("SELECT id FROM proposals WHERE state='pending' AND expires_at <= ?", (now,))
    return {r["id"] for r in rows}


def test_only_the_repositories_write_the_tables_kept_in_memory():
    """The in-memory answers rest on it: no other code in the process writes these rows."""
    owners = {"kill_switch": {"core/store/state.py"}, "proposals": {"core/store/proposals.py", "core/store/proposal_rows.py"}}
    offenders = []
    for top in ("core", "bot", "bench"):
        for path in (ROOT / top).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            text = path.read_text(encoding="utf-8")
            for table, allowed in owners.items():
                pattern = rf"(?is)\b(insert|update|delete|replace)\b[^;\"']{{0,40}}\b{table}\b(?!_)"
                if rel not in allowed and re.search(pattern, text):
                    offenders.append((rel, table))
    assert offenders == []


def test_the_kill_switch_kept_in_memory_follows_writes_and_rollbacks(mem):
    ks = mem.kill_switch
    assert ks.get() == _row_state(mem) == KillSwitchState()
    ks.set(KillSwitchState(paused=True, by="7"), "pause", by="7")
    got = ks.get()
    assert got == _row_state(mem) and got.paused
    got.paused = False  # the caller's copy
    assert ks.get().paused
    with pytest.raises(RuntimeError), mem.transaction():
        ks.set(KillSwitchState(emergency=True, by="9"), "emergency")
        assert _agrees(mem).emergency and ks.emergency() == (True, "9")  # inside: what the row holds now
        raise RuntimeError
    assert _agrees(mem).paused and ks.emergency() == (False, "7") and ks.blocking()
    with mem.transaction():  # rolled back to a savepoint only
        with pytest.raises(RuntimeError), mem.transaction():
            ks.set(KillSwitchState(auto_disabled=True), "auto_disable")
            raise RuntimeError
        assert ks.get() == _row_state(mem) and not ks.get().auto_disabled
    before, after = ks.update(lambda s: s.model_copy(update={"paused": False, "resumed_by": "8"}), "resume")
    assert before.paused and not after.paused and ks.get() == _row_state(mem) == after


def test_a_read_racing_a_write_on_another_thread_never_keeps_the_old_row(mem):
    ks = mem.kill_switch
    stop = threading.Event()
    errors = []

    def reader():
        while not stop.is_set():
            ks.get()

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for i in range(200):
            ks.set(KillSwitchState(paused=bool(i % 2), reason=str(i)), "x")
            if ks.get().reason != str(i):
                errors.append(i)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == [] and ks.get() == _row_state(mem)


def test_the_expiry_check_sees_a_new_proposal_and_a_rolled_back_expiry(mem):
    p = mem.proposals
    p.create(make_proposal("late1", expiry=600))
    assert p.expire_due(T0 + 100) == []  # the lowest pending expiry (T0+600) is now known
    p.create(make_proposal("soon1", expiry=50))  # earlier than what was known
    assert p.expire_due(T0 + 100) == ["soon1"]
    p.create(make_proposal("soon2", expiry=200))
    with pytest.raises(RuntimeError), mem.transaction():
        assert p.expire_due(T0 + 300) == ["soon2"]
        assert p.expire_due(T0 + 250) == []  # reads T0+600 as the lowest: true only inside
        raise RuntimeError
    assert p.get("soon2").state is S.PENDING
    assert p.expire_due(T0 + 300) == ["soon2"]
    assert p.expire_due(T0 + 700) == ["late1"] and p.expire_due(T0 + 10_000) == []


def test_random_steps_answer_as_the_rows_do(mem):
    rng = random.Random(17)
    p, ks = mem.proposals, mem.kill_switch
    ids: list[str] = []
    for step in range(600):
        op = rng.random()
        now = T0 + rng.uniform(0, 400)
        with contextlib.suppress(RuntimeError):  # the step's own rollback, drawn below
            with mem.transaction():
                if op < 0.3:
                    batch = [make_proposal(f"r{step}x{k}", expiry=rng.choice([10, 60, 120, 300])) for k in range(2)]
                    p.create_many(batch)
                    ids += [b.id for b in batch]
                elif op < 0.5 and ids:
                    p.transition(rng.choice(ids), S.PENDING, rng.choice([S.APPROVED, S.REJECTED]))
                elif op < 0.6:
                    ks.set(KillSwitchState(paused=rng.random() < 0.5, emergency=rng.random() < 0.3, reason=str(step),
                                           by=rng.choice([None, "7", "8"])), "x")
                    _agrees(mem)
                else:
                    want = _due(mem, now)
                    assert set(p.expire_due(now)) == want
                if rng.random() < 0.25:
                    raise RuntimeError("rolled back")
        want = _due(mem, now)
        assert set(p.expire_due(now)) == want
        _agrees(mem)


def test_the_id_check_is_the_character_rule():
    from core.store import is_valid_proposal_id

    def rule(text: str) -> bool:
        return 1 <= len(text) <= 16 and all(c.isascii() and (c.isalnum() or c in "-_") for c in text)

    rng = random.Random(5)
    alphabet = "aZ09-_ .\n\t/٣éß\u00b2ＡK" + "".join(chr(i) for i in range(32, 127))
    cases = ["", "a", "a\n", "\na", "x" * 16, "x" * 17, "٣", "ab-_9", "--", "_"]
    cases += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 18))) for _ in range(5000)]
    assert [is_valid_proposal_id(c) for c in cases] == [rule(c) for c in cases]


def test_the_remembered_move_checks_answer_as_the_state_machine_does():
    from itertools import combinations

    from core.store import ALLOWED_TRANSITIONS, IllegalTransition
    from core.store.proposals import _checked_move

    states = list(S)
    shapes = [*states, *(s.value for s in states), *combinations(states, 2), *(list(c) for c in combinations(states, 2))]
    for _ in range(2):  # the second round answers from what the first remembered
        for frm in shapes:
            for to in [*states, *(s.value for s in states)]:
                froms = {S(f) for f in ([frm] if isinstance(frm, str) else frm)}
                allowed = all(S(to) in ALLOWED_TRANSITIONS[f] for f in froms)
                if allowed:
                    assert _checked_move(frm, to) == (frozenset(froms), S(to))
                else:
                    with pytest.raises(IllegalTransition):
                        _checked_move(frm, to)
    assert _checked_move((s for s in [S.PENDING]), S.APPROVED) == (frozenset({S.PENDING}), S.APPROVED)
    with pytest.raises(IllegalTransition):
        _checked_move((s for s in [S.EXECUTED]), S.APPROVED)


def test_the_notifier_reads_the_emergency_and_the_entry_gate_from_the_store(mem):
    from core.config.loading import load_config
    from core.domain.wording import actor_label
    from core.ops.notify import Notifier

    n = Notifier(load_config(), store=mem, clock=FixedClock(T0))
    assert n.emergency_on() is None and n.entries_blocked() is None
    mem.kill_switch.set(KillSwitchState(emergency=True, by="7"), "emergency", by="7")
    assert n.emergency_on() == actor_label("7") and n.entries_blocked()
    mem.kill_switch.set(KillSwitchState(emergency=True), "emergency")
    assert n.emergency_on() == "a trader"
    mem.kill_switch.set(KillSwitchState(paused=True, by="8"), "pause", by="8")
    assert n.emergency_on() is None and n.entries_blocked()
    assert Notifier(load_config()).emergency_on() is None  # no store, no kill switch: nothing to read

    class Unreadable:
        def __getattr__(self, name):
            raise RuntimeError("disk I/O error")

    mem.kill_switch, saved = Unreadable(), mem.kill_switch  # unreadable: the exits go on, new entries are refused
    try:
        assert n.emergency_on() is None and "could not be read" in n.entries_blocked()
    finally:
        mem.kill_switch = saved
