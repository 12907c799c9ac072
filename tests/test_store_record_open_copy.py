"""`Store.record_open` copies the trade with `copy_with`, the project's `model_copy(update=...)` shortcut: the trade
it returns and the rows it writes must be exactly those of the `model_copy` it replaced, for a trade built by
validation, one with unset fields (model_construct), one with odd metadata, and with and without a proposal."""
from __future__ import annotations

import math

import pytest

from core.domain.clock import FixedClock
from core.domain.models import ActiveTrade
from core.domain.models import ProposalState as S
from core.store import Store, TradeMetadata
from core.store import store as store_mod
from tests.store_helpers import T0, make_proposal, make_trade


def _model_copy(model, update):
    return model.model_copy(update=update)


def _rows(store: Store) -> tuple:
    q = store.db.conn.execute
    return (q("SELECT * FROM active_trades ORDER BY ticket").fetchall(),
            [tuple(r)[1:] for r in q("SELECT * FROM journal ORDER BY id").fetchall()],  # ids: the same sequence
            q("SELECT state, ticket, decided_by, data FROM proposals ORDER BY id").fetchall())


def _state(t: ActiveTrade) -> tuple:
    return (type(t), list(t.__dict__), t.__pydantic_fields_set__, t.__pydantic_extra__, t.__pydantic_private__,
            t.model_dump_json())


def _opens(store: Store) -> list[ActiveTrade]:
    p = store.proposals.create(make_proposal("copy1"))
    assert store.proposals.transition(p.id, S.PENDING, S.EXECUTING)
    base = make_trade(11, p.id)
    unset = ActiveTrade.model_construct(**{k: v for k, v in make_trade(12).__dict__.items() if k != "metadata"})
    odd = make_trade(13).model_copy(update={"metadata": {"x": math.nan, "strategy": "own"}, "version": 7})
    return [store.record_open(base, metadata=TradeMetadata.from_proposal(p), data={"notes": []}),
            store.record_open(unset),
            store.record_open(odd, metadata={"strategy": "s", "planned_rr": None}),
            store.record_open(make_trade(14), metadata=base.metadata)]


@pytest.mark.parametrize("path", [":memory:", "file"])
def test_record_open_gives_the_model_copy_trade_and_rows(tmp_path, monkeypatch, path):
    where = ":memory:" if path == ":memory:" else tmp_path / "fast.sqlite"
    with Store(where, FixedClock(T0)) as fast:
        got = _opens(fast)
        rows = _rows(fast)
    monkeypatch.setattr(store_mod, "copy_with", _model_copy)  # the general path
    where = ":memory:" if path == ":memory:" else tmp_path / "slow.sqlite"
    with Store(where, FixedClock(T0)) as slow:
        want = _opens(slow)
        assert _rows(slow) == rows
    assert [_state(t) for t in got] == [_state(t) for t in want]
    assert [t.version for t in got] == [0, 0, 0, 0]
