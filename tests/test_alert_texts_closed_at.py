"""A close alert's time reads the same whether it came through gmtime (whole seconds) or a UTC datetime."""
from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from core.ops.alert_texts import closed_at_text


def _reference(t) -> str:
    """What closed_at_text said before its whole-second path: always a UTC datetime."""
    if not t:
        return ""
    return " on " + datetime.fromtimestamp(float(t), UTC).strftime("%d %b %H:%M UTC")


def test_closed_at_matches_the_datetime_text_for_any_time():
    rng = random.Random(17)
    edges = [1, 59, 60, 86399, 86400, 951782400, 951868799, 951868800, 1735812900, 1735813200.0, 1704067199,
             1709164800, 4102444800, 253402300799, 253402300799.0]  # month, leap-day and year boundaries
    fractions = [59.9999996, 59.9999994, 1735813199.9999999, 1735813259.5, 0.5, 1e-7]  # datetime rounds these
    ints = [rng.randrange(1, 253402300800) for _ in range(3000)]
    for t in [*edges, *fractions, *ints, *(float(x) for x in ints), *(rng.uniform(0, 4e9) for _ in range(3000))]:
        assert closed_at_text(t) == _reference(t), t


@pytest.mark.parametrize("t", [None, 0, 0.0])
def test_no_time_says_nothing(t):
    assert closed_at_text(t) == ""


@pytest.mark.parametrize("t", [-60.0, -1, 253402300800.0, 1e300, float("inf"), float("nan")])
def test_times_outside_the_whole_second_path_say_or_raise_what_datetime_does(t):
    try:
        want = _reference(t)
    except (OverflowError, ValueError, OSError) as e:
        with pytest.raises(type(e)):
            closed_at_text(t)
    else:
        assert closed_at_text(t) == want


def test_another_locales_month_names_come_from_strftime(monkeypatch):
    """Outside the C locale the month is strftime's %b (here the C one, as only C locales are installed)."""
    import core.ops.alert_texts as at

    seen = []
    monkeypatch.setattr(at, "setlocale", lambda cat: seen.append(cat) or "de_DE.UTF-8")
    monkeypatch.setattr(at.time, "strftime", lambda fmt, tm: f"<{fmt}|{tm.tm_mday}>")
    assert at.closed_at_text(1735813200.0) == " on <%d %b %H:%M UTC|2>" and seen == [at.LC_TIME]
