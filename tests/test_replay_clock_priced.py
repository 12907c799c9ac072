"""The paper replay starts where symbols can be priced, not only analysed.

BTCUSDc has an M5 file from 2025-03-27 and an M1 file from 2025-05-21. Quotes and fills come from the finest
bars, so before 2025-05-21 a /scalp could draw a card whose Approve had no price. The replay clock used to
start on 2025-03-28, where BTCUSDc was shown as tradable but every order was refused as "market closed".
"""
from __future__ import annotations

from datetime import UTC, datetime

from bot.health_text import health_text
from core.app import build_for_run, replay_clock
from core.brokers.base import BrokerError
from core.config.loading import load_config
from core.domain.clock import FixedClock
from core.ops.health import symbol_data
from core.trading.authz import Authorizer

_MARCH = datetime(2025, 3, 28, 17, 40, tzinfo=UTC).timestamp()  # BTCUSDc M5 bars, no M1 bars


def _service(tmp_path, at: float):
    return build_for_run(load_config(), None, clock=FixedClock(at), data_dir=tmp_path, authorizer=Authorizer((), ()))


def _quotable(service, symbol: str) -> bool:
    try:
        service.broker.tick(symbol)
    except BrokerError:
        return False
    return True


def test_the_replay_starts_where_every_symbol_marked_tradable_has_a_price(tmp_path):
    start = replay_clock(load_config()).now()
    service = _service(tmp_path, start)
    data = symbol_data(service)
    assert data["BTCUSDc"].at_clock and data["XAUUSDc"].at_clock, data
    for sym, d in data.items():
        assert _quotable(service, sym) == d.at_clock, (sym, d)
    assert datetime.fromtimestamp(start, UTC) >= datetime(2025, 5, 21, 15, 46, tzinfo=UTC)
    assert "prices from M1 bars 2025-05-21 to 2025-06-04" in data["BTCUSDc"].describe()


def test_a_symbol_with_bars_to_analyse_but_none_to_price_is_not_called_tradable(tmp_path):
    service = _service(tmp_path, _MARCH)
    assert not _quotable(service, "BTCUSDc") and _quotable(service, "XAUUSDc")
    d = symbol_data(service)["BTCUSDc"]
    assert not d.at_clock and d.no_prices
    assert d.describe() == ("no prices at the replay time (data 2025-03-27 to 2025-06-04, "
                            "prices from M1 bars 2025-05-21 to 2025-06-04)")
    assert symbol_data(service)["XAUUSDc"].describe() == "data 2025-01-01 to 2025-10-27"
    text = health_text(service.health())  # not started: the broker and monitor are reported down too
    assert text.splitlines()[0].endswith("; BTCUSDc: no prices at the replay time; "
                                         "EURUSDc: no data at the replay time"), text
