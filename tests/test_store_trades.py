"""Active trades (no lost update under threads + asyncio), closed trades, journal metadata, export CLI."""
from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.cli import main
from core.domain.clock import FixedClock
from core.domain.models import ProposalState
from core.store import DuplicateTradeError, StaleTradeError, Store, TradeMetadata
from tests.store_helpers import T0, make_closed, make_proposal, make_trade


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "s.sqlite", FixedClock(T0))
    yield s
    s.close()


def test_add_get_duplicate_remove(store):
    t = store.trades.add(make_trade(1).model_copy(update={"version": 9}))
    assert t.version == 0 and store.trades.get(1) == t
    with pytest.raises(DuplicateTradeError):
        store.trades.add(make_trade(1))
    store.trades.add(make_trade(2, symbol="XAUUSDc"))
    assert [x.ticket for x in store.trades.all(symbol="XAUUSDc")] == [2]
    assert store.trades.remove(1).ticket == 1
    assert store.trades.remove(1) is None
    assert store.trades.tickets() == {2}


def test_update_bumps_version_and_unknown_ticket_is_none(store):
    store.trades.add(make_trade(1))

    def move(t):
        t.sl = 99.3
        t.breakeven_moved = True

    saved = store.trades.update(1, move)
    assert saved.version == 1 and saved.sl == 99.3
    assert store.trades.get(1).breakeven_moved
    assert store.trades.update(404, move) is None
    with pytest.raises(ValueError):
        store.trades.update(1, lambda t: t.model_copy(update={"ticket": 2}))


def test_optimistic_save_detects_a_concurrent_writer(store):
    store.trades.add(make_trade(1))
    mine = store.trades.get(1)
    store.trades.update(1, lambda t: setattr(t, "mfe_r", 0.7))  # someone else wrote meanwhile
    mine.sl = 99.5
    with pytest.raises(StaleTradeError) as e:
        store.trades.save(mine)
    assert (e.value.expected, e.value.actual) == (0, 1)
    fresh = store.trades.get(1)
    fresh.sl = 99.5
    saved = store.trades.save(fresh)
    assert saved.version == 2 and store.trades.get(1).mfe_r == 0.7 and store.trades.get(1).sl == 99.5


async def test_no_lost_update_under_threads_and_asyncio(store):
    store.trades.add(make_trade(1))
    n_threads, per_thread, n_tasks = 6, 40, 60

    def bump(t):
        t.metadata = {**t.metadata, "n": t.metadata.get("n", 0) + 1}
        t.mfe_r += 0.5

    def worker():
        for _ in range(per_thread):
            store.trades.update(1, bump)

    def optimistic_worker():  # the save() path with retry, as an exit manager holding a copy would do
        for _ in range(per_thread):
            while True:
                t = store.trades.get(1)
                bump(t)
                try:
                    store.trades.save(t)
                    break
                except StaleTradeError:
                    continue

    async def task():
        await asyncio.sleep(0)
        store.trades.update(1, bump)

    threads = [asyncio.to_thread(worker) for _ in range(n_threads // 2)]
    threads += [asyncio.to_thread(optimistic_worker) for _ in range(n_threads // 2)]
    await asyncio.gather(*threads, *[task() for _ in range(n_tasks)])
    total = n_threads * per_thread + n_tasks
    final = store.trades.get(1)
    assert final.metadata["n"] == total
    assert final.mfe_r == pytest.approx(0.5 * total)
    assert final.version == total


def test_concurrent_registers_of_one_ticket_register_once(store):
    barrier = threading.Barrier(6)

    def reg(_):
        barrier.wait()
        try:
            store.trades.add(make_trade(77))
            return True
        except DuplicateTradeError:
            return False

    with ThreadPoolExecutor(6) as ex:
        assert sum(ex.map(reg, range(6))) == 1


def test_record_trade_event_updates_and_journals_together(store):
    store.trades.add(make_trade(3))
    saved, entry = store.record_trade_event(3, lambda t: setattr(t, "sl", 99.3), "sl_moved",
                                            {"from": 98.8, "to": 99.3, "reason": "breakeven"})
    assert saved.sl == 99.3 and entry.event == "sl_moved" and entry.data["to"] == 99.3
    assert entry.metadata["trade_type"] == "range_scalp" and entry.metadata["range_low"] == 99.0
    assert store.record_trade_event(404, lambda t: None, "sl_moved") is None


def test_metadata_from_proposal_has_the_seed_fields():
    meta = TradeMetadata.from_proposal(make_proposal("meta1")).model_dump()
    assert meta == {
        "trade_type": "range_scalp", "strategy": "vwap_reversion", "range_type": "dynamic", "range_high": 101.0,
        "range_low": 99.0, "confluence_score": 78.0, "planned_rr": 1.5, "session": "london",
        "entry_reason": "3_confluence_passed",
    }


def test_closed_queries(store):
    for i, ts in enumerate([T0 + 100, T0 + 300, T0 + 200]):
        store.record_close(make_closed(make_trade(10 + i), exit_time=ts))
    assert [t.ticket for t in store.closed.recent(2)] == [11, 12]
    assert [t.ticket for t in store.closed.since(T0 + 200)] == [12, 11]


def test_net_pnl_before_a_window_counts_commission_as_a_cost(store):
    """Where a `/metrics 7` equity curve starts: balance + net P&L of everything closed before it."""
    a = make_closed(make_trade(20), exit_price=100.05, exit_time=T0 + 100).model_copy(update={"commission": -0.2})
    b = make_closed(make_trade(21), exit_price=98.8, exit_time=T0 + 200).model_copy(update={"commission": 0.2})
    c = make_closed(make_trade(22), exit_price=100.05, exit_time=T0 + 300)
    for t in (a, b, c):
        store.record_close(t)
    assert store.closed.net_pnl_before(T0) == 0.0
    assert store.closed.net_pnl_before(T0 + 150) == pytest.approx(a.pnl - 0.2)
    assert store.closed.net_pnl_before(T0 + 250) == pytest.approx(a.pnl + b.pnl - 0.4)
    assert store.closed.net_pnl_before(T0 + 1e9) == pytest.approx(a.pnl + b.pnl + c.pnl - 0.4)


def test_state_export_cli_prints_the_store_view(store, tmp_path, capsys):
    p = store.proposals.create(make_proposal("cli1"))
    store.proposals.transition(p.id, ProposalState.PENDING, ProposalState.EXECUTING)
    store.record_open(make_trade(9, p.id), metadata=TradeMetadata.from_proposal(p))
    store.proposals.create(make_proposal("cli2"))
    assert main(["state", "export", "--store", str(store.path)]) == 0
    view = json.loads(capsys.readouterr().out)
    assert list(view["active_trades"]) == ["9"]
    assert view["active_trades"]["9"]["metadata"]["session"] == "london"
    assert [p["id"] for p in view["open_proposals"]] == ["cli2"]
    assert view["journal"][0]["event"] == "opened"
    assert view["kill_switch"]["paused"] is False and view["schema_version"] == store.schema_version


def test_state_export_cli_missing_store_is_one_line(tmp_path, capsys):
    assert main(["state", "export", "--store", str(tmp_path / "none.sqlite")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no store at") and len(err.strip().splitlines()) == 1


CHILD = """
import sys
sys.path.insert(0, {root!r})
from core.store import Store
s = Store({path!r})
def bump(t):
    t.metadata = {{**t.metadata, "n": t.metadata.get("n", 0) + 1}}
for _ in range({n}):
    s.trades.update(1, bump)
s.close()
"""


def test_no_lost_update_across_processes(tmp_path):
    """The in-process lock does not cover other processes: BEGIN IMMEDIATE + busy_timeout must."""
    import subprocess
    import sys
    from pathlib import Path

    import core

    root = str(Path(core.__file__).resolve().parent.parent)
    path = str(tmp_path / "mp.sqlite")
    s = Store(path)
    s.trades.add(make_trade(1))
    n = 60
    code = CHILD.format(root=root, path=path, n=n)
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]
    for _ in range(n):
        s.trades.update(1, lambda t: setattr(t, "metadata", {**t.metadata, "n": t.metadata.get("n", 0) + 1}))
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert s.trades.get(1).metadata["n"] == 3 * n
    s.close()


def test_connections_of_finished_threads_are_closed(store):
    def read():
        store.trades.count()

    for _ in range(30):
        th = threading.Thread(target=read)
        th.start()
        th.join()
    store.trades.count()
    assert len(store.db._all_conns) <= 3


async def test_memory_store_is_one_database_for_every_thread():
    """`:memory:` is per connection in SQLite; backtests use it from the loop and from worker threads."""
    s = Store(":memory:", FixedClock(T0))
    s.trades.add(make_trade(1))

    def bump(t):
        t.metadata = {**t.metadata, "n": t.metadata.get("n", 0) + 1}

    def worker():
        assert s.trades.get(1) is not None  # sees the table and the row created on another thread
        for _ in range(50):
            s.trades.update(1, bump)

    await asyncio.gather(*[asyncio.to_thread(worker) for _ in range(4)])
    for _ in range(50):
        s.trades.update(1, bump)
    assert s.trades.get(1).metadata["n"] == 250
    with pytest.raises(RuntimeError):
        with s.transaction():
            s.trades.add(make_trade(2))
            raise RuntimeError("rollback works in memory too")
    assert s.trades.tickets() == {1}
    s.close()
