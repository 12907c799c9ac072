"""`copy_with(model, update)` is `model.model_copy(update=update)`: same values, key order, fields set, extra and
private values, a new `__dict__` and fields set (editing the copy leaves the original alone), and the models it
cannot copy itself (extra allowed or present, private attributes, own copy methods) go to `model_copy`."""
from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, PrivateAttr
from store_helpers import make_trade

from core.domain.copies import copy_with
from core.domain.models import ActiveTrade


def _state(m: BaseModel) -> tuple:
    return (type(m), list(m.__dict__.items()), m.__pydantic_fields_set__, m.__pydantic_extra__,
            getattr(m, "__pydantic_private__", None))


def _same(a: BaseModel, b: BaseModel) -> None:
    sa, sb = _state(a), _state(b)
    assert sa[0] is sb[0]
    assert [k for k, _ in sa[1]] == [k for k, _ in sb[1]]
    for (_, va), (_, vb) in zip(sa[1], sb[1], strict=True):
        assert va is vb or va == vb or (isinstance(va, float) and math.isnan(va) and math.isnan(vb))
    assert sa[2:] == sb[2:]
    assert a.model_dump_json() == b.model_dump_json()


UPDATES = [
    {},
    {"mfe_r": 1.25, "mae_r": -0.5},
    {"mfe_r": float("nan"), "mae_r": -0.0, "version": 3, "last_state_change": 1.7e9},
    {"sl": 99.0, "breakeven_moved": True},
    {"volume": 0.02, "exit_manager_state": "exiting", "metadata": {"x": [1, 2]}},
]


def test_equal_to_model_copy_for_active_trades():
    base = make_trade(proposal_id="p1")
    unset = ActiveTrade.model_construct(**{k: v for k, v in base.__dict__.items() if k != "metadata"})
    for trade in (base, base.model_copy(update={"mfe_r": 0.3}), unset):
        for upd in UPDATES:
            fast, slow = copy_with(trade, dict(upd)), trade.model_copy(update=dict(upd))
            _same(fast, slow)
            assert fast.__dict__ is not trade.__dict__
            assert fast.__pydantic_fields_set__ is not trade.__pydantic_fields_set__
            assert fast.range_data is trade.range_data  # shallow, as model_copy


def test_the_copy_is_independent_of_the_original():
    trade = make_trade()
    before = _state(trade)
    out = copy_with(trade, {"mfe_r": 2.0})
    out.__pydantic_fields_set__.add("tp")
    out.__dict__["sl"] = 1.0
    assert _state(trade) == before and trade.mfe_r == 0.0


class _Extra(BaseModel):
    model_config = ConfigDict(extra="allow")
    a: int = 1


class _Private(BaseModel):
    a: int = 1
    _p: int = PrivateAttr(default=5)


class _OwnCopy(BaseModel):
    a: int = 1

    def model_copy(self, *, update=None, deep=False):
        out = super().model_copy(update=update, deep=deep)
        out.__dict__["a"] = -1
        return out


def test_models_it_cannot_copy_go_to_model_copy():
    for m, upd in ((_Extra(a=2, z=3), {"a": 4, "y": 5}), (_Private(a=2), {"a": 3}), (_OwnCopy(a=2), {"a": 3})):
        fast, slow = copy_with(m, upd), m.model_copy(update=upd)
        _same(fast, slow)
    assert copy_with(_OwnCopy(a=2), {"a": 3}).a == -1
    assert copy_with(_Private(a=2), {"a": 3})._p == 5
