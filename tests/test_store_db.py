"""Store connection layer: WAL/FULL, migrations, transactions (atomicity, nesting, crash), misuse guard."""
from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from core.domain.clock import FixedClock
from core.domain.models import FilterResult, ProposalState
from core.store import Migration, ProposalConflict, Store, StoreError, TransactionMisuse
from core.store.schema import MIGRATIONS
from tests.store_helpers import T0, make_closed, make_proposal, make_trade


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "data" / "moneybot.sqlite", FixedClock(T0))
    yield s
    s.close()


def test_creates_parent_dir_wal_and_full_sync(store, tmp_path):
    assert (tmp_path / "data" / "moneybot.sqlite").exists()
    c = store.db.conn
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert c.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert c.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    assert store.schema_version == MIGRATIONS[-1].version


def _old_proposal_row(conn, p, text: str) -> None:
    """A proposal as schema 1-3 stored it: the whole JSON, analysis inside, in its own row."""
    conn.execute(
        "INSERT INTO proposals(id, symbol, strategy, state, created_at, expires_at, updated_at, decided_by, ticket,"
        " data) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (p.id, p.symbol, p.strategy.strategy, p.state.value, p.created_at, p.expires_at, T0, p.decided_by, p.ticket,
         text))


def test_opening_an_old_db_upgrades_it_and_keeps_data(tmp_path):
    path = tmp_path / "old.sqlite"
    old = Store(path, FixedClock(T0), migrations=MIGRATIONS[:1])
    assert old.schema_version == 1
    tables = {r[0] for r in old.db.query("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "proposals" in tables and "error_events" not in tables
    p = make_proposal("oldprop1")
    odd = FilterResult(name="x", passed=True, reason="é \"q\"", details={"inf": math.inf, "nan": math.nan,
                                                                          "big": 2**70, "neg0": -0.0, "f": 0.1})
    done = make_proposal("oldprop2").model_copy(update={
        "analysis": p.analysis.model_copy(update={"filters": [odd], "confidence": 12.5}), "state": ProposalState.EXECUTED,
        "decided_by": "7", "ticket": 42, "fill_price": 99.31, "message": "filled"})
    with old.transaction():
        _old_proposal_row(old.db.conn, p, p.to_json())
        _old_proposal_row(old.db.conn, done, json.dumps(json.loads(done.to_json()), indent=2))  # another formatting
        old.db.conn.execute("INSERT INTO proposals(id, symbol, strategy, state, created_at, expires_at, updated_at,"
                            " data) VALUES ('broken1', 'X', 's', 'pending', 1, 2, 1, 'not json')")
    old.trades.add(make_trade(7, p.id))
    old.close()

    new = Store(path, FixedClock(T0))
    assert new.schema_version == MIGRATIONS[-1].version
    assert new.proposals.get("oldprop1") == p
    got = new.proposals.get("oldprop2")
    assert got.model_dump(exclude={"analysis"}) == done.model_dump(exclude={"analysis"})
    assert got.analysis.to_json() == done.analysis.to_json()  # NaN != NaN: compared as the exact text
    assert got.analysis.filters[0].details["big"] == 2**70 and math.copysign(1, got.analysis.filters[0].details["neg0"]) < 0
    listed = new.proposals.list(symbol=p.symbol)
    assert [q.id for q in listed] == ["oldprop2", "oldprop1"] and listed[1] == p
    with pytest.raises(ValueError):  # did not read before the upgrade either
        new.proposals.get("broken1")
    assert new.proposals.transition("oldprop1", ProposalState.PENDING, ProposalState.APPROVED, decided_by="3")
    assert new.proposals.get("oldprop1") == p.model_copy(update={"state": ProposalState.APPROVED, "decided_by": "3"})
    assert new.trades.get(7).proposal_id == "oldprop1"
    versions = [r[0] for r in new.db.query("SELECT version FROM schema_version ORDER BY version")]
    assert versions == [m.version for m in MIGRATIONS]
    new.kill_switch.set(new.kill_switch.get().model_copy(update={"paused": True}), "pause")  # v2 table usable
    assert new.kill_switch.get().paused
    with pytest.raises(sqlite3.IntegrityError, match="never changes"):
        new.db.write("UPDATE analyses SET data='{}' WHERE id='oldprop1'")
    with pytest.raises(sqlite3.IntegrityError, match="never changes"):
        new.db.write("DELETE FROM analyses WHERE id='oldprop1'")
    new.close()


def test_failed_migration_rolls_back_and_leaves_version(tmp_path):
    path = tmp_path / "m.sqlite"
    Store(path, migrations=MIGRATIONS[:1]).close()

    def broken(conn):
        conn.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("boom in the middle")

    with pytest.raises(RuntimeError, match="boom"):
        Store(path, migrations=[*MIGRATIONS[:1], Migration(2, "broken", broken)])
    c = sqlite3.connect(path)
    assert c.execute("PRAGMA user_version").fetchone()[0] == 1
    assert c.execute("SELECT COUNT(*) FROM sqlite_master WHERE name='half_done'").fetchone()[0] == 0
    c.close()
    s = Store(path)  # the real migrations still apply afterwards
    assert s.schema_version == MIGRATIONS[-1].version
    s.close()


def test_newer_schema_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "new.sqlite"
    c = sqlite3.connect(path)
    c.execute("PRAGMA user_version=99")
    c.close()
    with pytest.raises(StoreError, match="newer than this MoneyBot"):
        Store(path)


def test_garbage_file_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match="junk.sqlite"):
        Store(path)


def test_transaction_rolls_back_everything_on_failure(store):
    p = store.proposals.create(make_proposal("atomic01"))
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.proposals.transition(p.id, ProposalState.PENDING, ProposalState.APPROVED, decided_by="7")
            store.trades.add(make_trade(1))
            store.journal.append("opened", ticket=1)
            raise RuntimeError("crash between writes")
    assert store.proposals.get(p.id).state is ProposalState.PENDING
    assert store.trades.count() == 0
    assert store.journal.count() == 0


def test_nested_failure_rolls_back_only_the_inner_savepoint(store):
    with store.transaction():
        store.trades.add(make_trade(1))
        with pytest.raises(RuntimeError):
            with store.transaction():
                store.trades.add(make_trade(2))
                raise RuntimeError("inner")
        store.trades.add(make_trade(3))
    assert store.trades.tickets() == {1, 3}


def test_record_open_is_atomic(store, monkeypatch):
    p = store.proposals.create(make_proposal("openatom"))
    assert store.proposals.transition(p.id, ProposalState.PENDING, ProposalState.APPROVED)
    assert store.proposals.transition(p.id, ProposalState.APPROVED, ProposalState.EXECUTING)

    def fail(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(store.journal, "add", fail)  # what record_open journals with
    with pytest.raises(OSError):
        store.record_open(make_trade(11, p.id))
    assert store.proposals.get(p.id).state is ProposalState.EXECUTING
    assert store.trades.get(11) is None
    monkeypatch.undo()

    saved = store.record_open(make_trade(11, p.id))
    assert saved.metadata["trade_type"] == "range_scalp"
    got = store.proposals.get(p.id)
    assert got.state is ProposalState.EXECUTED and got.ticket == 11 and got.fill_price == 99.3
    [opened] = store.journal.for_ticket(11)
    assert opened.event == "opened" and opened.metadata["range_high"] == 101.0
    # a second record_open for the same approval is refused and writes nothing
    with pytest.raises(ProposalConflict):
        store.record_open(make_trade(12, p.id))
    assert store.trades.tickets() == {11}
    assert store.journal.count() == 1


def test_record_close_is_atomic_and_idempotent(store, monkeypatch):
    t = store.trades.add(make_trade(21))
    closed = make_closed(t)
    monkeypatch.setattr(store.closed, "add", lambda *_: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        store.record_close(closed)
    assert store.trades.get(21) is not None and store.journal.count() == 0
    monkeypatch.undo()

    assert store.record_close(closed) is True
    assert store.trades.get(21) is None
    stored = store.closed.get(21)
    assert stored.r_multiple == pytest.approx(1.5) and stored.metadata["strategy"] == "vwap_reversion"
    assert [e.event for e in store.journal.for_ticket(21)] == ["closed"]
    assert store.record_close(closed) is False  # replayed by recovery: no second row, no second journal
    assert store.journal.count() == 1 and store.closed.count() == 1


def test_journal_is_append_only(store):
    store.journal.append("opened", ticket=1)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("UPDATE journal SET event='closed'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("DELETE FROM journal")
    with pytest.raises(ValueError):
        store.journal.append("teleported", ticket=1)


async def test_transaction_left_open_across_await_is_detected(store):
    entered = asyncio.Event()
    release = asyncio.Event()

    async def bad():
        with store.transaction():
            entered.set()
            await release.wait()

    task = asyncio.create_task(bad())
    await entered.wait()
    with pytest.raises(TransactionMisuse):
        with store.transaction():
            pass
    release.set()
    await task
    with store.transaction():  # usable again afterwards
        store.trades.add(make_trade(5))
    assert store.trades.tickets() == {5}


CRASH_CHILD = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from core.store import Store
    from tests.store_helpers import make_trade
    s = Store({path!r})
    s.trades.add(make_trade(1))
    with s.transaction():
        s.trades.add(make_trade(2))
        s.journal.append("opened", ticket=2)
        os.kill(os.getpid(), signal.SIGKILL)
""")


def test_sigkill_mid_transaction_leaves_nothing_half_written(tmp_path):
    import core

    root = str(__import__("pathlib").Path(core.__file__).resolve().parent.parent)
    path = str(tmp_path / "crash.sqlite")
    proc = subprocess.run([sys.executable, "-c", CRASH_CHILD.format(root=root, path=path)], timeout=60)
    assert proc.returncode == -9
    s = Store(path)
    assert s.db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert s.trades.tickets() == {1}
    assert s.journal.count() == 0
    s.close()


def test_readers_on_other_threads_are_not_blocked_by_an_open_write(store):
    import threading

    store.trades.add(make_trade(1))
    seen = []
    with store.transaction():
        store.trades.add(make_trade(2))
        th = threading.Thread(target=lambda: seen.append(store.trades.tickets()))
        th.start()
        th.join(timeout=5)
        assert not th.is_alive()  # WAL: the read did not wait for our commit
    assert seen == [{1}]  # and it saw only committed data
