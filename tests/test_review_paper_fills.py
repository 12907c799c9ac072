"""Review of PaperBroker's fill side and price on real XAUUSD M5 bars (budimanlai export).

Each case is hand arithmetic on the CSV rows quoted in its comment (UTC; prices are bid; spread in
points, point 0.01; contract 100 oz/lot; slippage 2 points = 0.02; commission 7.00/lot/side). Cases
the week test (test_broker_paper_replay.py) leaves out: a short stopped by the spread alone, a long
that the spread cannot touch, the SL-first tie for a *short*, weekend gaps through a long's stop and
through take profits (filled at the open: better than the level), and the bar's own spread column.
"""
from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from broker_helpers import load_xau_m5, xau_spec

from core.brokers.base import OrderRequest
from core.brokers.paper.broker import PaperBroker
from core.brokers.paper.feed import ReplayFeed
from core.data.candles import CANDLE_DTYPE
from core.domain.clock import FixedClock
from core.domain.timeframes import Timeframe

SYM = "XAUUSDc"


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def xau():
    return load_xau_m5()


def broker_at(xau, when: str, **spec) -> PaperBroker:
    b = PaperBroker({SYM: xau_spec(**spec)}, ReplayFeed({SYM: {Timeframe.M5: xau}}), db_path=":memory:",
                    clock=FixedClock(utc(when)), slippage_points=2, commission_per_lot=7.0)
    b.connect()
    return b


def place(b, side, sl, tp, volume=0.01):
    return b.market_order(OrderRequest(symbol=SYM, side=side, volume=volume, sl=sl, tp=tp, magic=9, comment=side))


def exits(b, position):
    return [(d.reason, round(d.price, 2), round(d.profit, 2), d.time) for d in b.history_deals(position)
            if d.entry == "out"]


def test_spread_decides_a_shorts_stop_but_never_a_longs(xau):
    # Mon 03-17 00:00 row: O 2990.02 H 2990.66 L 2988.71 spread 15 -> ask = bid + 0.15
    b = broker_at(xau, "2025-03-17T00:00")
    assert (b.tick(SYM).bid, b.tick(SYM).ask) == (pytest.approx(2990.02), pytest.approx(2990.17))
    # short: sells at bid - slip = 2990.00; SL 2990.76 is above the bid high 2990.66 but the ask high
    # 2990.81 reaches it -> stopped at 2990.76 + 0.02 = 2990.78; profit -(0.78) * 0.01 * 100 = -0.78
    short = place(b, "sell", 2990.76, 2980.00)
    assert short.price == pytest.approx(2990.00)
    # long: buys at ask + slip = 2990.19; TP 2990.67 is under the ask high 2990.81 but over the bid
    # high 2990.66, and SL 2988.70 is one cent under the bid low: a long exits on the bid -> no exit
    untouched = place(b, "buy", 2988.70, 2990.67)
    assert untouched.price == pytest.approx(2990.19)
    # long with its SL exactly at the bid low 2988.71: touched -> 2988.71 - 0.02 = 2988.69;
    # profit (2988.69 - 2990.19) * 100 * 0.01 = -1.50
    touched = place(b, "buy", 2988.71, 2995.00)
    b.step()  # 00:05: the 00:00 bar (the entry bar, entered at its open) is closed
    assert exits(b, short.position) == [("sl", 2990.78, -0.78, utc("2025-03-17T00:05"))]
    assert exits(b, untouched.position) == []
    assert exits(b, touched.position) == [("sl", 2988.69, -1.50, utc("2025-03-17T00:05"))]


def test_sl_first_on_a_tie_for_a_short_too(xau):
    # Wed 03-12 12:30 row (US CPI): O 2914.01 H 2922.58 L 2913.08 spread 15.
    # short at 2914.01 - 0.02 = 2913.99; ask low 2913.23 <= TP 2913.50 and ask high 2922.73 >= SL 2916.00:
    # both inside the bar -> SL first: 2916.00 + 0.02 = 2916.02; profit -(2916.02 - 2913.99) = -2.03
    b = broker_at(xau, "2025-03-12T12:30")
    r = place(b, "sell", 2916.00, 2913.50)
    assert r.price == pytest.approx(2913.99)
    b.step()
    assert exits(b, r.position) == [("sl", 2916.02, -2.03, utc("2025-03-12T12:35"))]


def test_weekend_gap_down_fills_a_longs_stop_and_a_shorts_target_at_mondays_open(xau):
    # Fri 02-07 21:55 row (last of the week): O 2861.88 H 2861.90 L 2860.91 spread 20.
    # Sun 02-09 23:00 row (first after the weekend): O 2855.78 H 2862.27 L 2854.82 spread 15.
    b = broker_at(xau, "2025-02-07T21:55")
    long_ = place(b, "buy", 2858.00, 2870.00)  # at 2861.88 + 0.20 + 0.02 = 2862.10
    short = place(b, "sell", 2870.00, 2858.00)  # at 2861.88 - 0.02 = 2861.86
    assert (long_.price, short.price) == (pytest.approx(2862.10), pytest.approx(2861.86))
    b.advance_to(utc("2025-02-08T12:00"))  # Saturday: Friday's bar never reached 2858 (low 2860.91)
    assert b.positions(SYM) and len(b.positions(SYM)) == 2
    b.advance_to(utc("2025-02-09T23:05"))
    # long: the bid opens at 2855.78, beyond the 2858.00 stop -> filled at the open less slippage,
    # 2855.76 (worse than the stop); profit (2855.76 - 2862.10) * 100 * 0.01 = -6.34
    assert exits(b, long_.position) == [("sl", 2855.76, -6.34, utc("2025-02-09T23:05"))]
    # short: the ask opens at 2855.78 + 0.15 = 2855.93, beyond the 2858.00 target -> filled at the open
    # (better than the target, no slippage on a take profit); profit (2861.86 - 2855.93) = +5.93
    assert exits(b, short.position) == [("tp", 2855.93, 5.93, utc("2025-02-09T23:05"))]


def test_weekend_gap_up_fills_a_longs_target_and_a_shorts_stop_at_the_open(xau):
    # Fri 02-14 21:55 row: O 2882.79 H 2882.83 L 2882.51 spread 21.
    # Sun 02-16 23:00 row: O 2885.77 H 2893.33 L 2884.65 spread 100 (a wide Sunday spread).
    b = broker_at(xau, "2025-02-14T21:55")
    long_ = place(b, "buy", 2875.00, 2884.00)  # at 2882.79 + 0.21 + 0.02 = 2883.02
    short = place(b, "sell", 2884.00, 2875.00)  # at 2882.77; Friday's ask high 2883.04 < 2884.00
    b.advance_to(utc("2025-02-16T23:05"))
    # long TP: the bid opens at 2885.77 >= 2884.00 -> 2885.77; profit (2885.77 - 2883.02) = +2.75
    assert exits(b, long_.position) == [("tp", 2885.77, 2.75, utc("2025-02-16T23:05"))]
    # short SL: the ask opens at 2885.77 + 1.00 = 2886.77 -> + slippage 2886.79; profit -(4.02)
    assert exits(b, short.position) == [("sl", 2886.79, -4.02, utc("2025-02-16T23:05"))]


def test_balance_is_start_plus_every_deal_to_the_cent_over_many_real_round_trips(xau):
    """60 round trips on real bars, alternating sides, held 1..4 bars: balance = start + sum(profit + commission),
    and each exit's profit = (exit - entry) x direction x volume x 100, to the cent."""
    b = broker_at(xau, "2025-04-01T08:00")
    entries = {}
    for k in range(60):
        side = "buy" if k % 2 else "sell"
        r = place(b, side, 0.0, 0.0, volume=round(0.01 * (1 + k % 7), 2))
        entries[r.position] = (side, r.price, r.volume)
        for _ in range(1 + k % 4):
            b.step()
        b.close_position(r.position)
        b.step()
    deals = b.history_deals()
    assert len(deals) == 120
    for d in (d for d in deals if d.entry == "out"):
        side, price_in, vol = entries[d.position_id]
        sign = 1 if side == "buy" else -1
        assert d.profit == pytest.approx(round(sign * (d.price - price_in) * vol * 100, 2), abs=1e-9)
        assert d.commission == pytest.approx(-round(7.0 * vol, 2), abs=1e-9)
    expected = round(10_000.0 + sum(d.profit + d.commission for d in deals), 2)
    acct = b.account_info()
    assert acct.balance == expected and acct.equity == expected and acct.margin_free == expected


def test_the_bars_own_spread_is_used_and_the_default_only_where_the_data_has_none():
    t0 = int(utc("2025-01-06T08:00"))
    bars = np.zeros(3, dtype=CANDLE_DTYPE)
    for i, spread in enumerate((37, 0, 37)):
        bars[i] = (t0 + 300 * i, 2000.0, 2001.0, 1999.0, 2000.0, 10, spread, 0)
    b = PaperBroker({SYM: xau_spec(default_spread_points=20)}, ReplayFeed({SYM: {Timeframe.M5: bars}}),
                    db_path=":memory:", clock=FixedClock(t0))
    b.connect()
    q = b.tick(SYM)
    assert q.ask - q.bid == pytest.approx(0.37)  # the bar's column, 37 points x 0.01
    b.step()
    q = b.tick(SYM)
    assert q.ask - q.bid == pytest.approx(0.20)  # no spread in the data: the symbol's default
