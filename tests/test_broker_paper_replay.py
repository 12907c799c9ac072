"""One real week of XAUUSD M5 (budimanlai export, 2025-03-10..14) through PaperBroker, checked by hand.

Every expected number below is computed from the CSV rows quoted in the comments (times are UTC =
file time - 2h; prices are bid; spread column in points, point = 0.01; contract 100 oz/lot).
Broker settings: slippage 2 points (0.02), commission 7.00 per lot per side, stops level 20 points.
"""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from broker_helpers import load_xau_m5, xau_spec

from core.brokers.base import MarketClosedError, OrderRequest
from core.brokers.paper.broker import PaperBroker
from core.brokers.paper.feed import ReplayFeed
from core.domain.clock import FixedClock
from core.domain.timeframes import Timeframe

SYM = "XAUUSDc"


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def xau():
    return load_xau_m5()


@pytest.fixture
def broker(xau, tmp_path):
    b = PaperBroker({SYM: xau_spec()}, ReplayFeed({SYM: {Timeframe.M5: xau}}), db_path=tmp_path / "paper.sqlite",
                    clock=FixedClock(utc("2025-03-10T01:00")), slippage_points=2, commission_per_lot=7.0)
    b.connect()
    yield b
    b.close()


def order(side, volume, sl, tp, comment):
    return OrderRequest(symbol=SYM, side=side, volume=volume, sl=sl, tp=tp, magic=730125, comment=comment)


def out_deal(broker, position):
    deals = broker.history_deals(position)
    assert [d.entry for d in deals][0] == "in"
    return [d for d in deals if d.entry == "out"]


def test_one_real_week_of_xauusd_fills_match_hand_arithmetic(broker):
    # A. Mon 03-10 01:00 row: O 2913.79 H 2916.70 L 2913.69 C 2916.52 spread 18
    #    buy fills at ask + slippage = 2913.79 + 0.18 + 0.02 = 2913.99
    a = broker.market_order(order("buy", 0.01, 2911.20, 2918.50, "A"))
    assert a.price == pytest.approx(2913.99)
    # Lows until 02:05 stay above 2911.20 (closest: 01:55 L 2911.25, a near miss); highs never reach
    # 2918.50 (max 01:10 H 2918.24). 02:10 row: O 2913.14 H 2913.39 L 2909.94 -> SL hit.
    # exit = 2911.20 - 0.02 slippage = 2911.18; profit = (2911.18 - 2913.99) * 0.01 * 100 = -2.81
    broker.advance_to(utc("2025-03-10T03:00"))
    (xa,) = out_deal(broker, a.position)
    assert (xa.reason, xa.price, xa.profit, xa.commission) == ("sl", pytest.approx(2911.18), pytest.approx(-2.81),
                                                            pytest.approx(-0.07))
    assert xa.time == utc("2025-03-10T02:15")  # stamped at the 02:10 bar's close
    assert xa.comment == "[sl 2911.20]"

    # Daily break: no bars between Mon 20:55 and 22:00 -> market closed at 21:30.
    broker.advance_to(utc("2025-03-10T21:30"))
    with pytest.raises(MarketClosedError) as e:
        broker.market_order(order("buy", 0.01, 0, 0, "closed"))
    assert e.value.code == 10018

    # B. Tie bar. Wed 03-12 12:30 row: O 2914.01 H 2922.58 L 2913.08 spread 15 (US CPI release).
    #    buy 0.02 at 2914.01 + 0.15 + 0.02 = 2914.18; SL 2913.50 and TP 2915.00 are both inside this
    #    bar -> SL assumed first: exit 2913.50 - 0.02 = 2913.48; profit (2913.48-2914.18)*0.02*100 = -1.40
    broker.advance_to(utc("2025-03-12T12:30"))
    b = broker.market_order(order("buy", 0.02, 2913.50, 2915.00, "B"))
    assert b.price == pytest.approx(2914.18)
    broker.step()  # -> 12:35, the tie bar is now closed
    (xb,) = out_deal(broker, b.position)
    assert (xb.reason, xb.price, xb.profit, xb.commission) == ("sl", pytest.approx(2913.48), pytest.approx(-1.40),
                                                            pytest.approx(-0.14))

    # F. Gap through a stop. Wed 20:55 row: O 2933.24 H 2933.65 L 2933.00 spread 25.
    #    sell at bid - slippage = 2933.24 - 0.02 = 2933.22, SL 2933.92 (ask 2933.49 + 0.43 >= stops level).
    #    20:55 bar: ask high = 2933.65 + 0.25 = 2933.90 < 2933.92, no hit. Break 21:00-22:00.
    #    22:00 row: O 2933.94 spread 15 -> ask opens at 2934.09, beyond the stop: fill at the open,
    #    2934.09 + 0.02 = 2934.11; profit = -(2934.11 - 2933.22) * 0.01 * 100 = -0.89
    broker.advance_to(utc("2025-03-12T20:55"))
    f = broker.market_order(order("sell", 0.01, 2933.92, 2930.00, "F"))
    assert f.price == pytest.approx(2933.22)
    broker.advance_to(utc("2025-03-12T22:05"))
    (xf,) = out_deal(broker, f.position)
    assert (xf.reason, xf.price, xf.profit) == ("sl", pytest.approx(2934.11), pytest.approx(-0.89))
    assert xf.time == utc("2025-03-12T22:05")

    # D. Partial closes. Thu 03-13 14:30 row: O 2953.50 spread 15 -> buy 0.03 at 2953.50+0.15+0.02 = 2953.67
    #    14:40 row O 2958.05: close 0.01 at 2958.05 - 0.02 = 2958.03 -> (2958.03-2953.67)*0.01*100 = 4.36
    #    14:45 row O 2964.82: close 0.02 at 2964.80 -> (2964.80-2953.67)*0.02*100 = 22.26
    #    (SL 2940 / TP 2990 untouched: lows >= 2952.48, highs <= 2966.07 over 14:30-14:40)
    broker.advance_to(utc("2025-03-13T14:30"))
    d = broker.market_order(order("buy", 0.03, 2940.00, 2990.00, "D"))
    assert d.price == pytest.approx(2953.67)
    broker.advance_to(utc("2025-03-13T14:40"))
    p1 = broker.close_position(d.position, 0.01, comment="D partial")
    assert p1.price == pytest.approx(2958.03)
    (pos,) = broker.positions(SYM)
    assert pos.volume == pytest.approx(0.02) and pos.ticket == d.position
    broker.advance_to(utc("2025-03-13T14:45"))
    broker.close_position(d.position)
    assert broker.positions(SYM) == []
    xd = out_deal(broker, d.position)
    assert [(x.volume, x.price, x.profit, x.reason) for x in xd] == [
        (pytest.approx(0.01), pytest.approx(2958.03), pytest.approx(4.36), "client"),
        (pytest.approx(0.02), pytest.approx(2964.80), pytest.approx(22.26), "client"),
    ]

    # C. TP hit on a short. Fri 03-14 10:30 row: O 3002.39 H 3002.85 L 2999.03 spread 15
    #    sell 0.01 at 3002.39 - 0.02 = 3002.37, SL 3010.00, TP 2995.00.
    #    10:30 bar: ask low 2999.03 + 0.15 = 2999.18 > 2995 -> nothing.
    #    10:35 row: O 2999.43 H 2999.73 L 2989.71 spread 15: ask low 2989.86 <= 2995 -> TP at 2995.00
    #    (ask high 2999.88 < SL). profit = (3002.37 - 2995.00) * 0.01 * 100 = +7.37
    broker.advance_to(utc("2025-03-14T10:30"))
    c = broker.market_order(order("sell", 0.01, 3010.00, 2995.00, "C"))
    assert c.price == pytest.approx(3002.37)
    broker.step()
    assert out_deal(broker, c.position) == []  # the 10:30 bar did not reach the TP
    broker.step()
    (xc,) = out_deal(broker, c.position)
    assert (xc.reason, xc.price, xc.profit, xc.time) == ("tp", pytest.approx(2995.00), pytest.approx(7.37),
                                                       utc("2025-03-14T10:40"))

    # Weekend: Saturday has no bars. The quote is Friday's last close (20:55 row C 2985.97), stamped 21:00.
    broker.advance_to(utc("2025-03-15T12:00"))
    q = broker.tick(SYM)
    assert (q.bid, q.time) == (pytest.approx(2985.97), utc("2025-03-14T21:00"))
    with pytest.raises(MarketClosedError):
        broker.market_order(order("sell", 0.01, 0, 0, "weekend"))

    # Balance: profits -2.81 - 1.40 - 0.89 + 4.36 + 22.26 + 7.37 = +28.89;
    # commissions 7/lot/side: A 0.14, B 0.28, F 0.14, D 0.21 + 0.07 + 0.14, C 0.14 = 1.12
    # 10000 + 28.89 - 1.12 = 10027.77
    acct = broker.account_info()
    assert acct.balance == pytest.approx(10027.77)
    assert acct.equity == pytest.approx(10027.77)
