"""One contract, two brokers: PaperBroker and MT5Broker over the fake MetaTrader5 module must agree."""
from __future__ import annotations

import pytest
from broker_contract_fixtures import SYM, T0, MT5Driver, PaperDriver

from core.brokers.base import (
    Broker,
    InvalidStopsError,
    InvalidVolumeError,
    MarketClosedError,
    OrderRequest,
    PositionNotFoundError,
    UnknownSymbolError,
)
from core.domain.timeframes import Timeframe

CLIENT = {"client", "expert"}  # MT5 books our own closes as EXPERT; the paper broker as CLIENT


@pytest.fixture(params=["paper", "mt5"])
def market(request, tmp_path):
    drv = PaperDriver(tmp_path) if request.param == "paper" else MT5Driver(tmp_path)
    yield drv
    drv.broker.close()


def buy(volume=0.02, sl=1998.00, tp=2005.00, **kw):
    return OrderRequest(symbol=SYM, side="buy", volume=volume, sl=sl, tp=tp, magic=42, comment="rs:abc", **kw)


def test_is_a_broker(market):
    assert isinstance(market.broker, Broker)
    info = market.broker.symbol_info(SYM)
    assert (info.digits, info.point, info.trade_stops_level, info.volume_step) == (2, 0.01, 20, 0.01)


def test_tick_and_closed_candles(market):
    b = market.broker
    q = b.tick(SYM)
    assert (q.bid, q.ask) == (pytest.approx(2000.00), pytest.approx(2000.20))
    market.advance(3)
    bars = b.candles(SYM, Timeframe.M5, 10)
    assert list(bars["time"]) == [T0, T0 + 300, T0 + 600]  # the forming bar is not included
    assert bars["close"][-1] == pytest.approx(2001.80)


def test_order_modify_partial_close_then_tp(market):
    b = market.broker
    r = b.market_order(buy())
    assert r.retcode == 10009 and r.price == pytest.approx(2000.20)  # at the ask
    (p,) = b.positions(magic=42)
    assert (p.ticket, p.type, p.volume, p.sl, p.tp, p.comment) == (r.position, "buy", 0.02, 1998.00, 2005.00, "rs:abc")
    assert b.positions(magic=7) == []
    b.modify_sltp(r.position, 1999.00, 2003.00)
    (p,) = b.positions(SYM)
    assert (p.sl, p.tp) == (1999.00, 2003.00)

    market.advance()  # bar 0: L 1999.50 > SL, H 2000.50 < TP
    c = b.close_position(r.position, 0.01, comment="partial")
    assert c.volume == pytest.approx(0.01) and c.price == pytest.approx(2000.20)  # bid of bar 1
    assert b.positions(SYM)[0].volume == pytest.approx(0.01)

    market.advance(3)  # bar 3: H 2003.50 >= TP 2003.00
    assert b.positions(SYM) == []
    deals = b.history_deals(r.position)
    assert [d.entry for d in deals] == ["in", "out", "out"]
    assert deals[1].reason in CLIENT and deals[1].volume == pytest.approx(0.01)
    assert (deals[2].reason, deals[2].price, deals[2].volume) == ("tp", pytest.approx(2003.00), pytest.approx(0.01))
    assert deals[2].profit == pytest.approx(2.80)  # (2003.00 - 2000.20) * 0.01 lot * 100
    assert deals[1].profit == pytest.approx(0.0)
    found = [d for d in b.history_deals(since=None) if d.comment == "rs:abc"]
    assert [p for p in b.positions() if p.comment == "rs:abc"] == [] and [d.entry for d in found] == ["in"]


def test_short_stop_loss_uses_the_ask(market):
    b = market.broker
    market.advance(2)  # bar 2: O 2000.80 H 2002.00 -> ask high 2002.20
    r = b.market_order(OrderRequest(symbol=SYM, side="sell", volume=0.01, sl=2001.80, tp=1995.00, magic=42))
    assert r.price == pytest.approx(2000.80)
    market.advance()
    (out,) = [d for d in b.history_deals(r.position) if d.entry == "out"]
    assert (out.reason, out.price, out.profit) == ("sl", pytest.approx(2001.80), pytest.approx(-1.00))


def test_balance_follows_closed_profit(market):
    b = market.broker
    start = b.account_info().balance
    r = b.market_order(buy(volume=0.01, sl=0, tp=0))
    market.advance(3)  # bid at bar 3 open: 2001.80
    b.close_position(r.position)
    assert b.account_info().balance == pytest.approx(start + 1.60)  # (2001.80 - 2000.20) * 0.01 * 100


@pytest.mark.parametrize("req, error, code", [
    (buy(sl=2001.00), InvalidStopsError, 10016),          # SL above the bid for a long
    (buy(tp=1999.00), InvalidStopsError, 10016),          # TP below the bid for a long
    (buy(sl=1999.90), InvalidStopsError, 10016),          # 10 points from the bid < stops level 20
    (buy(volume=0.015), InvalidVolumeError, 10014),       # not a multiple of the step
    (buy(volume=0.001), InvalidVolumeError, 10014),       # below the minimum
])
def test_refusals(market, req, error, code):
    with pytest.raises(error) as e:
        market.broker.market_order(req)
    assert e.value.code == code
    assert market.broker.positions() == []


def test_refuses_wrong_side_modify_and_unknown_ticket(market):
    b = market.broker
    r = b.market_order(buy())
    with pytest.raises(InvalidStopsError):
        b.modify_sltp(r.position, 2000.10, 2005.00)
    with pytest.raises(PositionNotFoundError):
        b.close_position(999_999)


def test_refuses_unknown_symbol(market):
    with pytest.raises(UnknownSymbolError):
        market.broker.market_order(OrderRequest(symbol="NOPE", side="buy", volume=0.01))


def test_refuses_when_market_closed(market):
    market.close_market()
    with pytest.raises(MarketClosedError) as e:
        market.broker.market_order(buy(sl=0, tp=0))
    assert e.value.code == 10018
