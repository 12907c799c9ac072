"""The proposal repo's shortcuts around pydantic give exactly what pydantic gives: the tail written by hand is
`model_dump_json(include=TAIL)` byte for byte, a proposal built directly is the one model_construct/model_copy
build (same __dict__ in the same order, fields set, extra, private), and a move skips the tail validation only
for values that validation returns unchanged."""
from __future__ import annotations

import math
import random
import struct

import pytest

from core.domain.copies import copy_with
from core.domain.models import AnalysisResult, TradeProposal
from core.domain.models import ProposalState as S
from core.store import proposal_rows as R
from core.store.proposals import _AS_IS, TRANSITION_FIELDS, _TailFields
from tests.store_helpers import make_proposal


def _same_instance(got: TradeProposal, want: TradeProposal) -> None:
    assert type(got) is type(want)
    assert list(got.__dict__) == list(want.__dict__)
    assert all(got.__dict__[k] is want.__dict__[k] for k in want.__dict__)
    assert got.__pydantic_fields_set__ == want.__pydantic_fields_set__
    assert got.__pydantic_extra__ == want.__pydantic_extra__
    assert got.__pydantic_private__ == want.__pydantic_private__
    assert got.__dict__ is not want.__dict__ and got.__pydantic_fields_set__ is not want.__pydantic_fields_set__


def _outcome(f, q):
    try:
        return f(q)
    except Exception as e:  # noqa: BLE001 - the same failure is the same outcome
        return type(e)


def _tail_case(p: TradeProposal, **changes) -> None:
    q = p.model_copy(update=changes)
    assert _outcome(R.tail_json, q) == _outcome(lambda x: x.model_dump_json(include=R.TAIL), q), changes


def _odd_floats() -> list[float]:
    rnd = random.Random(17)
    fixed = [0.0, -0.0, 1.0, -1.0, 0.1, 0.1 + 0.2, 1e-7, 1e-5, 1.5e-5, 9.999e-5, 1e-4, 1.0001e-4, 0.00012345,
             1e15, 123456789012345.6, 9999999999999998.0, 1e16, 1.5e16, 1e17, 1e21, 1e22, 5e-324, 2.2250738585072014e-308,
             1.7976931348623157e308, math.inf, -math.inf, math.nan, 1780930500.0, 1.15398, 0.01, 2**53 + 0.0]
    bits = [struct.unpack("<d", struct.pack("<Q", rnd.getrandbits(64)))[0] for _ in range(20000)]
    scaled = [rnd.uniform(-1, 1) * 10.0 ** rnd.randint(-8, 18) for _ in range(20000)]
    rounded = [round(rnd.uniform(0, 2e9), rnd.randint(0, 9)) for _ in range(5000)]
    return fixed + bits + scaled + rounded


def test_the_hand_written_tail_is_the_pydantic_dump_for_any_float():
    p = make_proposal("t1")
    for v in _odd_floats():
        _tail_case(p, fill_price=v, decided_at=-v, lot=v)


def test_the_hand_written_tail_is_the_pydantic_dump_for_any_string_int_and_state():
    p = make_proposal("t2")
    strings = ["", "auto", "rejected", 'a "quote" \\ back/slash', ',"lot":9}', "tab\tnl\nret\rbs\bff\f", "\x00\x1f\x7f",
               "é ✓ 💰", "\ud800x", *(chr(c) for c in range(128)), "".join(chr(c) for c in range(128))]
    for s in strings:
        _tail_case(p, message=s, decided_by=s)
    for t in [None, 0, 1, -1, 2**31, 2**63 - 1, 2**63, 2**64, 2**70, -2**80]:
        _tail_case(p, ticket=t)
    for st in S:
        _tail_case(p, state=st)
    # values validation would never leave there (model_construct/model_copy set them): pydantic writes those
    for odd in [{"lot": 1}, {"ticket": True}, {"state": "pending"}, {"message": None}, {"decided_at": 5},
                {"fill_price": 2**60}]:
        _tail_case(p, **odd)


def test_the_tail_is_written_without_pydantic_for_validated_values(monkeypatch):
    p = make_proposal("t3").model_copy(update={"decided_by": "auto", "decided_at": 1780930500.25, "ticket": 12,
                                               "fill_price": 1.15398, "message": 'no fill, "requote"'})
    want = p.model_dump_json(include=R.TAIL)

    def refuse(*a, **k):
        raise AssertionError("went to pydantic")

    monkeypatch.setattr(TradeProposal, "model_dump_json", refuse)
    assert R.tail_json(p) == want
    # and every tail field has a writer (a new one would send every tail to pydantic)
    assert [name for name, _, _ in R._TAIL_KEYS] == [n for n in TradeProposal.model_fields if n in R.TAIL]


def test_built_and_copied_proposals_are_what_model_construct_and_model_copy_build():
    assert R._PLAIN  # else the shortcuts are off and this test compares pydantic with itself
    p = TradeProposal.from_json(make_proposal("b1").to_json())
    _same_instance(copy_with(p, {}), p.model_copy())
    changes = {"state": S.APPROVED, "decided_by": "auto", "decided_at": 5.5}
    _same_instance(copy_with(p, changes), p.model_copy(update=changes))
    fresh = make_proposal("b2")  # not every field set
    _same_instance(copy_with(fresh, {"message": "x"}), fresh.model_copy(update={"message": "x"}))
    text = R.row_text(p)
    analysis = AnalysisResult.from_json(p.analysis.to_json())
    rest = R._Rest.model_validate_json(text)
    want = TradeProposal.model_construct(rest.model_fields_set | {"analysis"}, analysis=analysis, **rest.__dict__)
    got = R.compose(text, analysis)
    assert list(got.__dict__) == list(TradeProposal.model_fields)
    assert got.__dict__ == want.__dict__ and list(got.__dict__) == list(want.__dict__)
    assert got.model_fields_set == want.model_fields_set
    assert (got.__pydantic_extra__, got.__pydantic_private__) == (want.__pydantic_extra__, want.__pydantic_private__)


@pytest.mark.parametrize("name", sorted(TRANSITION_FIELDS))
def test_a_move_skips_validation_only_for_values_it_returns_unchanged(name):
    assert set(_AS_IS) == TRANSITION_FIELDS
    samples = {str: ["", "auto", "\ud800", "é"], float: [0.0, -0.0, 1.5, math.inf, math.nan, 1e-7],
               int: [0, -3, 2**70], type(None): [None]}
    for typ in _AS_IS[name]:
        for v in samples[typ]:
            checked = _TailFields.model_validate({"state": S.APPROVED, name: v})
            assert getattr(checked, name) is v, (name, v)
    for st in S:  # a move's state is always a ProposalState (the state machine's check makes it one)
        assert _TailFields.model_validate({"state": st}).state is st


def test_a_move_with_values_validation_changes_still_validates(tmp_path):
    from core.domain.clock import FixedClock
    from core.store import Store
    from tests.store_helpers import T0

    store = Store(tmp_path / "s.sqlite", FixedClock(T0))
    try:
        p = store.proposals.create(make_proposal("v1"))
        moved = store.proposals.move(p.id, S.PENDING, S.APPROVED, decided_at=5, decided_by="auto")
        assert type(moved.decided_at) is float and moved == store.proposals.get(p.id)
        with pytest.raises(ValueError):
            store.proposals.move(p.id, S.APPROVED, S.EXECUTING, ticket="not a ticket")
        moved = store.proposals.move(p.id, S.APPROVED, S.EXECUTING, ticket=77, fill_price=1.25, message="sent")
        assert moved == store.proposals.get(p.id) and moved.model_fields_set == store.proposals.get(p.id).model_fields_set
    finally:
        store.close()
