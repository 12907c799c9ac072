"""The paper account's deals by position, kept in memory, are always what a SELECT of the committed rows gives."""
from __future__ import annotations

import sqlite3

import pytest

from core.brokers.base import Deal
from core.brokers.paper.store import PaperStore


def _deal(ticket: int, pid: int, t: float, entry: str = "out", profit: float = 1.5, commission: float = -0.0,
          **kw) -> Deal:
    return Deal(ticket=ticket, order=ticket - 1, position_id=pid, symbol="XAUUSDc", type="buy", entry=entry,
                volume=0.01, price=2000.25, profit=profit, commission=commission, magic=7, comment=f"c{ticket}",
                time=t, reason="sl", **kw)


def _sql(st: PaperStore, pid: int) -> list[Deal]:
    rows = st._conn.execute("SELECT * FROM deals WHERE position_id=? ORDER BY time, ticket", (pid,)).fetchall()
    return [Deal(**dict(r)) for r in rows]


def _same(st: PaperStore, pids=range(1, 5)) -> None:
    for pid in pids:
        got, want = st.deals(pid), _sql(st, pid)
        # repr of the values: 0.0 and -0.0 are equal but must not differ (SQLite reads a stored -0.0 as 0.0)
        assert [repr(d.__dict__) for d in got] == [repr(d.__dict__) for d in want]
        assert [d.__pydantic_fields_set__ for d in got] == [d.__pydantic_fields_set__ for d in want]


@pytest.mark.parametrize("where", ["file", "memory"])
def test_deals_by_position_follow_inserts_in_any_order(tmp_path, where):
    st = PaperStore(tmp_path / "p.sqlite" if where == "file" else ":memory:", 10_000)
    st.insert_deal(_deal(11, 1, 100.0, entry="in"))
    _same(st)  # the first read loads every deal, the inserts after it are added in memory
    st.insert_deal(_deal(12, 1, 200.0, profit=-0.0))
    st.insert_deal(_deal(14, 2, 150.0, entry="in"))
    st.insert_deal(_deal(13, 2, 150.0))  # same time, lower ticket: sorts before 14
    st.insert_deal(_deal(15, 2, 120.0))  # earlier time than what is there already
    st.insert_deal(_deal(16, 3, 90.0, profit=float("inf")))
    with st.transaction():
        st.insert_deal(_deal(17, 3, 95.0))
    _same(st)
    assert [d.ticket for d in st.deals(2)] == [15, 13, 14] and st.deals(4) == []
    assert repr(st.deals(1)[1].profit) == "0.0" and repr(st.deals(1)[1].commission) == "0.0"
    with pytest.raises(sqlite3.IntegrityError):  # a duplicate ticket: nothing stored, nothing kept
        st.insert_deal(_deal(17, 4, 99.0))
    _same(st)
    st.close()


def test_a_rolled_back_deal_is_not_shown(tmp_path):
    st = PaperStore(tmp_path / "p.sqlite", 10_000)
    st.insert_deal(_deal(11, 1, 100.0, entry="in"))
    assert len(st.deals(1)) == 1
    with pytest.raises(RuntimeError), st.transaction():
        st.insert_deal(_deal(12, 1, 200.0))
        assert [d.ticket for d in st.deals(1)] == [11, 12]  # inside: its own changes
        raise RuntimeError("crash before commit")
    assert [d.ticket for d in st.deals(1)] == [11]
    _same(st)
    st.close()


def test_another_connections_deal_is_seen(tmp_path):
    path = tmp_path / "p.sqlite"
    st = PaperStore(path, 10_000)
    st.insert_deal(_deal(11, 1, 100.0, entry="in"))
    assert len(st.deals(1)) == 1
    with sqlite3.connect(path) as other:
        other.execute('INSERT INTO deals (ticket, "order", position_id, symbol, type, entry, volume, price, profit,'
                      " commission, swap, magic, comment, time, reason) VALUES"
                      " (12, 11, 1, 'XAUUSDc', 'sell', 'out', 1, 2001, -0.0, 0, 0, 7, '', 150, 'tp')")
    assert [d.ticket for d in st.deals(1)] == [11, 12]
    _same(st)
    st.close()


def test_a_value_of_another_type_than_its_column_is_read_back_from_sqlite(tmp_path):
    """An unvalidated deal (an int volume, a bool magic) is stored as SQLite converts it: the deals kept in
    memory are dropped and read again, not guessed."""
    st = PaperStore(tmp_path / "p.sqlite", 10_000)
    st.insert_deal(_deal(11, 1, 100.0, entry="in"))
    assert len(st.deals(1)) == 1
    odd = _deal(12, 1, 200.0).model_copy(update={"volume": 1, "magic": True})
    st.insert_deal(odd)
    assert st._deals_by_pos is None
    _same(st)
    assert st.deals(1)[1].volume == 1.0 and type(st.deals(1)[1].volume) is float
    st.insert_deal(_deal(13, 1, 300.0))
    _same(st)
    st.close()
