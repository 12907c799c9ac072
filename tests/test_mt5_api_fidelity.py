"""MT5Broker against details of the real MetaTrader5 API the happy-path fakes used to hide.

- symbol_select() fails with False (not None), and its last_error can be an IPC failure.
- last_error() is one global slot: a second thread's call must not change what the first one reads.
- Prices live on the symbol's trade_tick_size grid, which can be coarser than its digits.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
from broker_contract_fixtures import SYM, T0, MT5Driver, scripted_bars
from fakes import fake_mt5 as mt5

from core.brokers.base import BrokerError, OrderRequest, PositionNotFoundError, UnknownSymbolError
from core.data.candles import from_columns

IDX = "US500"


@pytest.fixture
def drv():
    d = MT5Driver()
    yield d
    d.broker.close()


def test_symbol_select_ipc_failure_reconnects_instead_of_unknown_symbol(drv):
    inits = mt5.fake_state()["init_calls"]
    mt5.fake_inject("symbol_select", error=mt5.RES_E_INTERNAL_FAIL_CONNECT)  # terminal restarting
    assert drv.broker.tick(SYM).bid == pytest.approx(2000.0)
    assert mt5.fake_state()["init_calls"] == inits + 1 and drv.sleeps == [5.0]


def test_symbol_select_of_a_symbol_the_broker_lacks_is_unknown_with_its_code(drv):
    with pytest.raises(UnknownSymbolError) as e:
        drv.broker.tick("NOPE")
    assert e.value.code == mt5.RES_E_NOT_FOUND and drv.sleeps == []


def test_a_failed_read_keeps_its_own_error_when_another_thread_calls_meanwhile(drv):
    """positions_get() fails; before this thread reads why, another thread's call lands (None + 'ok').

    Reading the other call's error turned the failure into "no positions": a monitor then sees its
    trades vanish."""
    b = drv.broker
    b.market_order(OrderRequest(symbol=SYM, side="buy", volume=0.01, sl=1998.0, tp=2005.0, magic=42, comment="rs:x"))
    real_call = type(b)._call

    def interleaved(fn, *args, **kwargs):
        result = real_call(b, fn, *args, **kwargs)
        if fn == "positions_get" and threading.current_thread() is threading.main_thread():
            other = threading.Thread(target=real_call, args=(b, "history_deals_get"), kwargs={"position": 1})
            other.start()
            other.join()
        return result

    b._call = interleaved
    mt5.fake_inject("positions_get", error=mt5.RES_E_FAIL, message="Terminal: Call failed")
    mt5.fake_inject("history_deals_get", error=mt5.RES_S_OK, message="Success")  # None, and 'no error'
    with pytest.raises(BrokerError) as e:
        b.positions()
    assert e.value.code == mt5.RES_E_FAIL
    del b._call
    assert [p.comment for p in b.positions()] == ["rs:x"]


@pytest.fixture
def idx():
    """An index quoted with 2 digits that trades in 0.25 steps (bid and ask on the grid)."""
    d = MT5Driver()
    n = 6
    o = np.array([5000.00, 5000.50, 5001.00, 5001.25, 5001.75, 5002.00])
    bars = from_columns(T0 + 300 * np.arange(n), o, o + 1.0, o - 1.0, o + 0.25, np.full(n, 100), np.full(n, 25))
    mt5.fake_add_symbol(IDX, {mt5.TIMEFRAME_M5: bars}, digits=2, point=0.01, tick_size=0.25, stops_level=0,
                        contract_size=1, filling_mode=2)
    yield d
    d.broker.close()


def test_stops_off_the_tick_grid_are_snapped_away_from_the_market(idx):
    b = idx.broker
    # a strategy's levels at 2 digits: valid prices for the digits, not for a 0.25 grid
    r = b.market_order(OrderRequest(symbol=IDX, side="buy", volume=0.1, sl=4995.37, tp=5010.12, magic=42,
                                    comment="rs:idx"))
    assert r.retcode == 10009
    (p,) = b.positions(IDX)
    assert (p.sl, p.tp) == (4995.25, 5010.25)  # the SL further below, the TP further above: never closer

    mt5.fake_advance(IDX, 3)  # bid 5001.25: in profit
    b.modify_sltp(p.ticket, 5000.30, 5010.12)  # a breakeven stop: entry + costs, at 2 digits
    (p,) = b.positions(IDX)
    assert (p.sl, p.tp) == (5000.25, 5010.25)


def test_short_stops_snap_the_other_way(idx):
    b = idx.broker
    b.market_order(OrderRequest(symbol=IDX, side="sell", volume=0.1, sl=5004.62, tp=4990.13, magic=42,
                                comment="rs:short"))
    (p,) = b.positions(IDX)
    assert (p.sl, p.tp) == (5004.75, 4990.0)
    assert mt5.fake_state()["requests"][-1]["sl"] == 5004.75


def test_stops_already_on_the_grid_are_sent_unchanged(drv):
    drv.broker.market_order(OrderRequest(symbol=SYM, side="buy", volume=0.01, sl=1998.07, tp=2004.93, magic=1,
                                         comment="rs:same"))
    sent = mt5.fake_state()["requests"][-1]
    assert (sent["sl"], sent["tp"]) == (1998.07, 2004.93)


def test_a_failed_ticket_lookup_is_an_error_not_an_already_closed_position(drv):
    """positions_get(ticket=) returning None with an error is a failed read, not "no such position":
    the exit path takes PositionNotFoundError as "closed at the broker" and tells the trader so."""
    b = drv.broker
    r = b.market_order(OrderRequest(symbol=SYM, side="buy", volume=0.01, sl=1998.0, tp=2005.0, magic=42,
                                    comment="rs:open"))
    mt5.fake_inject("positions_get", error=mt5.RES_E_FAIL, message="Terminal: Call failed")
    with pytest.raises(BrokerError) as e:
        b.close_position(r.position)
    assert type(e.value) is BrokerError and e.value.code == mt5.RES_E_FAIL
    assert [p.ticket for p in b.positions()] == [r.position]  # still open, and nobody said otherwise
    b.close_position(r.position)
    with pytest.raises(PositionNotFoundError):  # now it really is gone
        b.close_position(r.position)


def test_algo_trading_off_in_the_terminal_says_how_to_fix_it(drv):
    mt5.fake_set_terminal(algo_trading=False)
    with pytest.raises(BrokerError) as e:
        drv.broker.market_order(OrderRequest(symbol=SYM, side="buy", volume=0.01, sl=1998.0, tp=2005.0, magic=42,
                                             comment="rs:at"))
    assert e.value.code == 10027 and not e.value.retryable
    assert "Algo Trading" in e.value.message and drv.broker.positions() == []


def test_a_position_that_closed_before_our_close_arrived_is_not_found_not_a_failure(drv):
    """Its SL hit between our look-up and the send: the server answers 10036 and the exit path must read
    that as 'already closed' (PositionNotFoundError), not as a failed close that pages the trader."""
    b = drv.broker
    r = b.market_order(OrderRequest(symbol=SYM, side="buy", volume=0.01, sl=1998.0, tp=2005.0, magic=42,
                                    comment="rs:race"))
    mt5.fake_inject("order_send", retcode=mt5.TRADE_RETCODE_POSITION_CLOSED, message="Position doesn't exist")
    with pytest.raises(PositionNotFoundError) as e:
        b.close_position(r.position)
    assert e.value.code == 10036
    mt5.fake_inject("order_send", retcode=mt5.TRADE_RETCODE_POSITION_CLOSED, message="Position doesn't exist")
    with pytest.raises(PositionNotFoundError):
        b.modify_sltp(r.position, 1999.0, 2005.0)


def test_a_deposit_first_in_the_history_does_not_stop_the_server_offset_being_learned():
    """An account's history usually opens with a deposit: a deal with no symbol to take a quote from."""
    from core.brokers.mt5.broker import MT5Broker
    from core.domain.clock import FixedClock

    mt5.fake_reset(server_offset_hours=2)
    bars = scripted_bars()
    bars["time"] += 7200  # server time, UTC+2
    mt5.fake_add_symbol(SYM, {mt5.TIMEFRAME_M5: bars}, stops_level=20, contract_size=100)
    mt5.fake_deposit(10_000.0, T0 - 86_400 + 7200)
    mt5.fake_advance(SYM, 2)
    trader = MT5Broker(mt5, clock=FixedClock(T0 + 600), server_utc_offset_hours=2, sleep=lambda s: None)
    r = trader.market_order(OrderRequest(symbol=SYM, side="buy", volume=0.01, sl=1998.0, tp=2005.0, magic=42,
                                         comment="rs:dep"))
    fresh = MT5Broker(mt5, clock=FixedClock(T0 + 600), sleep=lambda s: None)  # a restart, offset not pinned
    deals = fresh.history_deals(since=T0 - 2 * 86_400)
    assert [(d.ticket, d.time) for d in deals] == [(r.deal, T0 + 600)]  # the deposit is no trade deal
    assert fresh.offset == 7200


def test_close_waits_for_an_order_in_flight_on_another_thread(drv):
    """shutdown() in the middle of another thread's order_send would cut the terminal link under it: an
    order whose outcome is then unknown. Closing takes the same lock as every call."""
    b = drv.broker
    in_send, release = threading.Event(), threading.Event()
    real_send = mt5.order_send

    class Terminal:  # the fake module, with an order_send that takes its time
        def __getattr__(self, name):
            return getattr(mt5, name)

        def order_send(self, request):
            in_send.set()
            release.wait(5)
            return real_send(request)

    b.mt5 = Terminal()
    results = []
    sender = threading.Thread(target=lambda: results.append(b.market_order(
        OrderRequest(symbol=SYM, side="buy", volume=0.01, sl=1998.0, tp=2005.0, magic=42, comment="rs:inflight"))))
    sender.start()
    assert in_send.wait(5)
    closer = threading.Thread(target=b.close)
    closer.start()
    closer.join(0.2)
    assert closer.is_alive()  # waiting for the order, not shutting the terminal under it
    release.set()
    sender.join(5)
    closer.join(5)
    assert results and results[0].retcode == 10009 and not b.is_connected()


def test_a_result_without_a_price_takes_the_fill_price_from_its_deal(drv):
    """Under market execution the server may answer DONE before it knows the price: result.price is 0.
    A close reported "at 0" would reach the trader's chat as the exit price."""
    b = drv.broker
    mt5.fake_set_terminal(result_prices=False)
    r = b.market_order(OrderRequest(symbol=SYM, side="buy", volume=0.01, sl=1998.0, tp=2005.0, magic=42,
                                    comment="rs:px"))
    assert r.price == pytest.approx(2000.20)  # the ask it filled at, read from the entry deal
    mt5.fake_advance(SYM, 2)
    c = b.close_position(r.position)
    assert c.price == pytest.approx(2000.80)  # the bid of bar 2
    assert [d.price for d in b.history_deals(r.position)] == [pytest.approx(2000.20), pytest.approx(2000.80)]


def test_a_fill_whose_price_cannot_be_read_is_still_a_fill(drv):
    mt5.fake_set_terminal(result_prices=False)
    mt5.fake_inject("history_deals_get", error=mt5.RES_E_INTERNAL_FAIL_CONNECT, times=10)
    mt5.fake_inject("initialize", error=mt5.RES_E_INTERNAL_FAIL_CONNECT, times=10)  # and the terminal is gone
    r = drv.broker.market_order(OrderRequest(symbol=SYM, side="buy", volume=0.01, sl=1998.0, tp=2005.0, magic=42,
                                             comment="rs:nopx"))
    assert r.retcode == 10009 and r.price == 0.0 and r.position  # the caller falls back on the position


@pytest.fixture
def ioc():
    """A symbol that only takes IOC orders, with 0.02 lots on the book per order."""
    d = MT5Driver()
    mt5.fake_add_symbol(SYM, {mt5.TIMEFRAME_M5: scripted_bars()}, stops_level=20, contract_size=100,
                        filling_mode=2)
    yield d
    d.broker.close()


def test_a_close_filled_in_part_closes_the_rest_before_saying_closed(ioc):
    """IOC fills what the book has and cancels the rest (10010). A full close reported done while part
    of the position is still open tells the trader "closed" with money still at risk."""
    b = ioc.broker
    r = b.market_order(OrderRequest(symbol=SYM, side="buy", volume=0.05, sl=1998.0, tp=2005.0, magic=42,
                                    comment="rs:ioc"))
    mt5.fake_set_terminal(liquidity={SYM: 0.02})
    c = b.close_position(r.position)
    assert b.positions() == []
    assert c.volume == pytest.approx(0.05) and c.retcode == 10009 and c.price == pytest.approx(2000.0)
    out = [d.volume for d in b.history_deals(r.position) if d.entry == "out"]
    assert out == [pytest.approx(0.02), pytest.approx(0.02), pytest.approx(0.01)]


def test_an_asked_partial_close_filled_in_part_reports_what_it_filled(ioc):
    b = ioc.broker
    r = b.market_order(OrderRequest(symbol=SYM, side="buy", volume=0.05, sl=1998.0, tp=2005.0, magic=42,
                                    comment="rs:ioc2"))
    mt5.fake_set_terminal(liquidity={SYM: 0.02})
    c = b.close_position(r.position, volume=0.03)
    assert c.retcode == 10010 and c.volume == pytest.approx(0.02)
    assert [p.volume for p in b.positions()] == [pytest.approx(0.03)]
