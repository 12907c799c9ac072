"""The paper account's in-memory open positions never differ from the committed rows."""
from __future__ import annotations

import sqlite3

import pytest

from core.brokers.base import Position
from core.brokers.paper.store import PaperStore


def _pos(ticket: int, sl: float = 1.0) -> Position:
    return Position(ticket=ticket, symbol="XAUUSDc", type="buy", volume=0.01, price_open=2000.0, sl=sl, tp=2010.0,
                    magic=7, comment="c", time=1.0)


def _rows(path) -> list[tuple]:
    with sqlite3.connect(path) as c:
        return c.execute("SELECT ticket, sl FROM positions ORDER BY ticket").fetchall()


def test_cache_follows_own_writes(tmp_path):
    st = PaperStore(tmp_path / "p.sqlite", 10_000)
    assert st.positions() == []
    st.insert_position(_pos(2))
    st.insert_position(_pos(1))
    assert [p.ticket for p in st.positions()] == [1, 2]  # ticket order, as the SELECT gave
    st.update_position(2, sl=3)
    assert st.position(2).sl == 3.0 and isinstance(st.position(2).sl, float)
    st.delete_position(1)
    assert [(p.ticket, p.sl) for p in st.positions()] == _rows(tmp_path / "p.sqlite") == [(2, 3.0)]
    assert st.positions(magic=8) == [] and len(st.positions(symbol="XAUUSDc", magic=7)) == 1
    st.close()


def test_a_rolled_back_write_is_not_shown(tmp_path):
    st = PaperStore(tmp_path / "p.sqlite", 10_000)
    st.insert_position(_pos(1))
    st.positions()
    with pytest.raises(RuntimeError), st.transaction():
        st.update_position(1, sl=5.0)
        st.insert_position(_pos(9))
        assert {p.ticket for p in st.positions()} == {1, 9}  # inside: its own changes
        raise RuntimeError("crash before commit")
    assert [(p.ticket, p.sl) for p in st.positions()] == [(1, 1.0)]
    st.close()


def test_another_connections_commit_is_seen(tmp_path):
    path = tmp_path / "p.sqlite"
    st = PaperStore(path, 10_000)
    st.insert_position(_pos(1))
    assert len(st.positions()) == 1
    with sqlite3.connect(path) as other:
        other.execute("UPDATE positions SET sl=7 WHERE ticket=1")
        other.execute("INSERT INTO positions (ticket, symbol, type, volume, price_open, sl, tp, magic, comment, time)"
                      " VALUES (4, 'XAUUSDc', 'sell', 0.01, 2000, 2010, 1990, 7, '', 2)")
    assert [(p.ticket, p.sl) for p in st.positions()] == [(1, 7.0), (4, 2010.0)]
    st.close()


def test_an_in_memory_account_follows_its_own_writes_and_rollbacks():
    """`:memory:` has no other connection, so no data_version look-up; the cache still follows every write."""
    st = PaperStore(":memory:", 10_000)
    st.insert_position(_pos(1))
    st.update_position(1, sl=2.5)
    assert [(p.ticket, p.sl) for p in st.positions()] == [(1, 2.5)]
    with pytest.raises(RuntimeError), st.transaction():
        st.delete_position(1)
        assert st.positions() == []
        raise RuntimeError("rolled back")
    assert [(p.ticket, p.sl) for p in st.positions()] == [(1, 2.5)]
    st.close()


def test_meta_values_follow_rollbacks_and_other_connections(tmp_path):
    path = tmp_path / "p.sqlite"
    st = PaperStore(path, 10_000)
    assert st.balance() == 10_000.0 and st.next_ticket() == 100001 and st.next_ticket() == 100002
    with pytest.raises(RuntimeError), st.transaction():
        st.add_to_balance(-250.0)
        st.next_ticket()
        assert st.balance() == 9_750.0
        raise RuntimeError("rolled back")
    assert st.balance() == 10_000.0 and st.get_meta("next_ticket") == "100003"
    with sqlite3.connect(path) as other:
        other.execute("UPDATE meta SET value='123.5' WHERE key='balance'")
    assert st.balance() == 123.5
    assert st.get_meta("nothing", "dflt") == "dflt"
    st.set_meta("nothing", "x")
    assert st.get_meta("nothing", "dflt") == "x"
    st.close()


def test_next_ticket_reserves_consecutive_tickets_in_one_write(tmp_path):
    st = PaperStore(tmp_path / "p.sqlite", 10_000)
    first = st.next_ticket(2)  # an order and its deal
    assert st.next_ticket() == first + 2
    assert PaperStore(tmp_path / "p.sqlite", 10_000).next_ticket() == first + 3  # as committed


def _state(p: Position) -> tuple:
    return type(p), p.__dict__, p.model_fields_set, p.__pydantic_extra__, p.__pydantic_private__


@pytest.mark.parametrize("extra", [{}, {"price_current": 2001.0, "profit": 3.0}, {"identifier": 5}])
def test_a_new_position_is_cached_as_its_row_reads_back(tmp_path, extra):
    """The inserted Position itself is kept when it set exactly the columns (market_order's); one with other
    fields set is rebuilt from its columns. Either way the cache equals what the SELECT gives."""
    st = PaperStore(tmp_path / "p.sqlite", 10_000)
    st.positions()  # the cache is live
    given = Position(**{**_pos(3).model_dump(include=set(Position.model_fields) - {"price_current", "profit",
                                                                                    "identifier"}), **extra})
    st.insert_position(given)
    cached = st.position(3)
    assert (cached is given) == (not extra)
    st._forget()  # read the row back
    assert _state(st.position(3)) == _state(cached)
    st.close()
