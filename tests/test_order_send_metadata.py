"""`TradeMetadata.dump_from_proposal`: the journal metadata of a new trade, as `TradeMetadata.from_proposal(p).model_dump()`.

The dict is built directly only when every value has the type the model leaves unchanged; anything else goes
through the model. Both ways are compared with the model's own dump, key order and value types included."""
from __future__ import annotations

import inspect
import json

from store_helpers import make_proposal

from core.domain.models import Direction
from core.store import TradeMetadata


def _same(p):
    want = TradeMetadata.from_proposal(p).model_dump()
    got = TradeMetadata.dump_from_proposal(p)
    assert json.dumps(got) == json.dumps(want)  # order and values
    assert [type(v) for v in got.values()] == [type(v) for v in want.values()]
    return got


def test_the_default_entry_reason_is_the_models():
    default = inspect.signature(TradeMetadata.from_proposal).parameters["entry_reason"].default
    dumped = inspect.signature(TradeMetadata.dump_from_proposal).parameters["entry_reason"].default
    assert dumped == default and default


def test_a_validated_proposal_takes_the_direct_dict():
    p = make_proposal("m1")
    assert _same(p)["confluence_score"] == 78.0


def test_no_range_and_no_score():
    p = make_proposal("m2")
    p = p.model_copy(update={"analysis": p.analysis.model_copy(update={"range": None, "confluence_score": None})})
    assert _same(p)["range_high"] is None


def test_values_the_model_would_convert_go_through_it():
    p = make_proposal("m3")
    a = p.analysis.model_copy(update={"confluence_score": 78})  # model_copy does not validate: an int stays
    s = p.strategy.model_copy(update={"rr": 2})
    rng = a.range.model_copy(update={"range_high": 101})
    for odd in (p.model_copy(update={"analysis": a}), p.model_copy(update={"strategy": s}),
                p.model_copy(update={"analysis": a.model_copy(update={"range": rng})}),
                p.model_copy(update={"strategy": s.model_copy(update={"strategy": Direction.LONG})})):
        got = _same(odd)
        assert all(type(v) in (str, float, type(None)) for v in got.values())
