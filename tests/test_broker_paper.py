"""PaperBroker behaviour that is specific to the replay: look-ahead, resampling, clocks, restart, threads."""
from __future__ import annotations

import threading
from datetime import UTC, datetime

import numpy as np
import pytest
from broker_helpers import load_xau_m5, xau_spec

from core.brokers.base import Broker, OrderRequest
from core.brokers.paper.broker import PaperBroker
from core.brokers.paper.feed import AcceleratedClock, ReplayFeed
from core.domain.clock import FixedClock
from core.domain.timeframes import Timeframe

SYM = "XAUUSDc"


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def xau():
    return load_xau_m5()


def make(xau, path, start="2025-03-12T12:32", clock=None, **kw):
    b = PaperBroker({SYM: xau_spec()}, ReplayFeed({SYM: {Timeframe.M5: xau}}), db_path=path,
                    clock=clock or FixedClock(utc(start)), **kw)
    b.connect()
    return b


def test_paper_broker_satisfies_the_port(xau, tmp_path):
    assert isinstance(make(xau, tmp_path / "p.sqlite"), Broker)


def test_candles_are_closed_bars_only(xau, tmp_path):
    b = make(xau, tmp_path / "p.sqlite")  # 12:32: the 12:30 bar is forming
    m5 = b.candles(SYM, Timeframe.M5, 3)
    assert m5["time"][-1] == utc("2025-03-12T12:25")
    assert np.all(np.diff(m5["time"]) == 300)
    assert b.tick(SYM).bid == pytest.approx(2914.01)  # the forming bar's open, nothing later
    b.advance_to(utc("2025-03-12T12:35"))
    assert b.candles(SYM, Timeframe.M5, 1)["time"][-1] == utc("2025-03-12T12:30")


def test_higher_timeframes_are_resampled_without_the_forming_bucket(xau, tmp_path):
    b = make(xau, tmp_path / "p.sqlite")
    h1 = b.candles(SYM, Timeframe.H1, 5)
    assert h1["time"][-1] == utc("2025-03-12T11:00")  # 12:00 bucket is still forming at 12:32
    src = xau[(xau["time"] >= utc("2025-03-12T11:00")) & (xau["time"] < utc("2025-03-12T12:00"))]
    assert h1["open"][-1] == src["open"][0] and h1["close"][-1] == src["close"][-1]
    assert h1["high"][-1] == src["high"].max() and h1["low"][-1] == src["low"].min()
    # a count spanning a weekend still returns `count` whole bars
    b.advance_to(utc("2025-03-17T02:00"))
    assert len(b.candles(SYM, Timeframe.H1, 30)) == 30


def test_account_survives_restart_like_an_external_broker(xau, tmp_path):
    path = tmp_path / "p.sqlite"
    b = make(xau, path, start="2025-03-13T14:30")
    r = b.market_order(OrderRequest(symbol=SYM, side="buy", volume=0.03, sl=2940, tp=2990, magic=5, comment="keep"))
    b.close()
    again = make(xau, path, start="2025-03-13T14:30")
    (p,) = again.positions(magic=5)
    assert (p.ticket, p.volume, p.comment) == (r.position, 0.03, "keep")
    again.close()
    # restarting with an earlier clock resumes where the account stopped, not in its own past
    b3 = make(xau, path, start="2025-03-10T00:00")
    assert b3.now() == utc("2025-03-13T14:30")


def test_sl_tp_are_not_skipped_when_the_clock_jumps(xau, tmp_path):
    b = make(xau, tmp_path / "p.sqlite", start="2025-03-10T01:00")
    r = b.market_order(OrderRequest(symbol=SYM, side="buy", volume=0.01, sl=2911.20, tp=2918.50))
    b.advance_to(utc("2025-03-12T00:00"))  # one jump over 2 days: the 02:10 SL hit is still booked
    (out,) = [d for d in b.history_deals(r.position) if d.entry == "out"]
    assert out.reason == "sl" and out.time == utc("2025-03-10T02:15")


def test_accelerated_clock_maps_wall_time_onto_the_data(xau, tmp_path):
    wall = FixedClock(1_000_000.0)
    clock = AcceleratedClock(utc("2025-03-10T01:00"), speed=60, wall=wall)
    b = make(xau, tmp_path / "p.sqlite", clock=clock)
    wall.advance(10)  # 10 wall seconds at speed 60 = 10 replay minutes
    assert b.now() == utc("2025-03-10T01:10")
    assert b.candles(SYM, Timeframe.M5, 1)["time"][-1] == utc("2025-03-10T01:05")


def test_concurrent_orders_from_threads_are_all_booked(xau, tmp_path):
    b = make(xau, tmp_path / "p.sqlite")
    errors = []

    def trade(i):
        try:
            for _ in range(5):
                b.market_order(OrderRequest(symbol=SYM, side="buy", volume=0.01, magic=i))
                b.positions()
        except Exception as e:  # noqa: BLE001 - surfaced by the assert below
            errors.append(e)

    threads = [threading.Thread(target=trade, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ps = b.positions()
    assert len(ps) == 20 and len({p.ticket for p in ps}) == 20
    assert len(b.history_deals()) == 20


def test_a_position_closed_from_two_threads_is_booked_once(xau, tmp_path):
    from core.brokers.base import PositionNotFoundError

    b = make(xau, tmp_path / "p.sqlite")
    r = b.market_order(OrderRequest(symbol=SYM, side="buy", volume=0.01))
    outcomes = []
    barrier = threading.Barrier(4)

    def close():
        barrier.wait()
        try:
            b.close_position(r.position)
            outcomes.append("closed")
        except PositionNotFoundError:
            outcomes.append("gone")

    threads = [threading.Thread(target=close) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["closed", "gone", "gone", "gone"]
    assert [d.entry for d in b.history_deals(r.position)] == ["in", "out"]


def test_a_weekend_trading_symbol_trades_through_a_data_gap(tmp_path):
    from broker_contract_fixtures import gap_time, scripted_bars

    from core.brokers.base import MarketClosedError

    bars = scripted_bars()
    for weekends, expect in ((True, None), (False, MarketClosedError)):
        b = PaperBroker({SYM: xau_spec(trades_weekends=weekends)}, ReplayFeed({SYM: {Timeframe.M5: bars}}),
                        db_path=tmp_path / f"w{weekends}.sqlite", clock=FixedClock(gap_time()))
        b.connect()
        req = OrderRequest(symbol=SYM, side="buy", volume=0.01)
        if expect:
            with pytest.raises(expect):
                b.market_order(req)
        else:  # no bar in the gap: the last close (1996.70) + 20-point spread
            assert b.market_order(req).price == pytest.approx(1996.90)
        b.close()


def test_deviation_rule():
    """The requote rule in one place (core.brokers.paper.fills): beyond the deviation is refused."""
    from core.brokers.paper.fills import deviation_problem

    assert deviation_problem(None, 100.5, 20, 0.01) is None  # no price asked: market at any price
    assert deviation_problem(100.0, 100.20, 20, 0.01) is None  # exactly at the deviation
    said = deviation_problem(100.0, 100.21, 20, 0.01)
    assert said is not None and "deviation 20 points" in said


def test_a_remembered_quote_follows_the_clock_and_the_symbol_spec(xau, tmp_path):
    """The quote is reused while the clock stands; a clock move or a changed spec makes a new one."""
    b = make(xau, tmp_path / "p.sqlite")  # 12:32: the 12:30 bar is forming
    first = b.tick(SYM)
    assert b.tick(SYM) is first  # the same clock time: the same quote
    b.advance_to(utc("2025-03-12T12:35"))
    moved = b.tick(SYM)
    bar = xau[xau["time"] == int(utc("2025-03-12T12:35"))][0]
    assert moved.time == utc("2025-03-12T12:35") and moved.bid == pytest.approx(float(bar["open"]))
    coarse = xau_spec().model_copy(update={"point": xau_spec().point * 10})
    b.symbols[SYM] = coarse  # a broker given another spec for the symbol quotes with it at once
    assert int(bar["spread"]) > 0
    assert moved.ask == pytest.approx(moved.bid + int(bar["spread"]) * xau_spec().point)
    assert b.tick(SYM).ask == pytest.approx(moved.bid + int(bar["spread"]) * coarse.point)
