"""MT5Broker against injected terminal faults: each retcode's retry, fallback or typed error."""
from __future__ import annotations

import pytest
from broker_contract_fixtures import SYM, T0, MT5Driver, scripted_bars
from fakes import fake_mt5 as mt5

from core.brokers.base import (
    BrokerConnectionError,
    BrokerError,
    BrokerTimeoutError,
    InvalidFillError,
    InvalidStopsError,
    MarketClosedError,
    NoMoneyError,
    OrderRequest,
    PriceChangedError,
    RequoteError,
    StaleQuoteError,
    TooManyRequestsError,
)
from core.domain.timeframes import Timeframe


@pytest.fixture
def drv():
    d = MT5Driver()
    yield d
    d.broker.close()


def buy(comment="rs:p1", **kw):
    base = dict(symbol=SYM, side="buy", volume=0.01, sl=1998.0, tp=2005.0, magic=42, comment=comment)
    return OrderRequest(**{**base, **kw})


def sent():
    return mt5.fake_state()["requests"]


def test_none_return_reads_last_error_and_is_not_retried(drv):
    mt5.fake_inject("order_send", error=mt5.RES_E_INVALID_PARAMS, message="Invalid \"volume\" argument")
    with pytest.raises(BrokerError) as e:
        drv.broker.market_order(buy())
    assert e.value.code == -2 and "volume" in e.value.message
    assert len(sent()) == 1 and drv.sleeps == []


@pytest.mark.parametrize("ipc", [-10003, -10004])  # the library never reached the terminal: not sent
def test_ipc_failure_reconnects_and_resends(drv, ipc):
    inits = mt5.fake_state()["init_calls"]
    mt5.fake_inject("order_send", error=ipc)
    r = drv.broker.market_order(buy())
    assert r.retcode == 10009
    # reconnect (5 s), then the request is reconciled by magic + marker over a bounded wait before the resend
    assert mt5.fake_state()["init_calls"] == inits + 1 and drv.sleeps == [5.0, 2.5, 2.5]
    assert len(drv.broker.positions()) == 1 and len(sent()) == 2


def test_lost_reply_after_execution_is_found_by_comment_not_sent_twice(drv):
    mt5.fake_inject("order_send", error=-10005, executed=True)
    r = drv.broker.market_order(buy(comment="rs:once"))
    assert r.retcode == 10009 and r.comment == "found after retry"
    assert [p.comment for p in drv.broker.positions()] == ["rs:once"]
    assert len(sent()) == 1


def test_ipc_timeout_with_nothing_executed_is_not_resent(drv):
    mt5.fake_inject("order_send", error=-10005)  # outcome unknown: look, never resend
    with pytest.raises(BrokerConnectionError) as e:
        drv.broker.market_order(buy(comment="rs:amb"))
    assert e.value.code == -10005 and "not resent" in e.value.message
    assert len(sent()) == 1 and drv.broker.positions() == []
    assert drv.sleeps == [5.0, 2.5, 2.5]  # reconnect, then 3 look-ups spread over the policy interval


@pytest.mark.parametrize("lookups", [1, 2])
def test_executed_but_visible_only_after_n_lookups_is_found_not_sent_twice(drv, lookups):
    mt5.fake_inject("order_send", error=-10005, executed=True, visible_after=lookups)
    r = drv.broker.market_order(buy(comment="rs:late"))
    assert r.comment == "found after retry"
    assert [p.comment for p in drv.broker.positions()] == ["rs:late"] and len(sent()) == 1
    assert drv.sleeps == [5.0] + [2.5] * lookups


def test_executed_but_visible_after_the_window_raises_and_never_resends(drv):
    mt5.fake_inject("order_send", error=-10005, executed=True, visible_after=3)
    with pytest.raises(BrokerConnectionError):
        drv.broker.market_order(buy(comment="rs:later"))
    assert len(sent()) == 1  # the old single look-up + resend made this a second fill
    assert [p.comment for p in drv.broker.positions()] == ["rs:later"]  # one fill, for reconciliation to adopt


def test_bridge_breaking_during_order_send_is_ambiguous(drv):
    real = mt5.order_send

    def broken(request):
        real(request)  # it reached the terminal and executed, then the socket broke
        raise EOFError("connection closed by peer")

    drv.broker.mt5 = type("M", (), {})()  # a module-like wrapper: everything real but order_send
    for name in dir(mt5):
        if not name.startswith("__"):
            setattr(drv.broker.mt5, name, getattr(mt5, name))
    drv.broker.mt5.order_send = broken
    r = drv.broker.market_order(buy(comment="rs:eof"))
    assert r.comment == "found after retry" and len(sent()) == 1 and len(drv.broker.positions()) == 1


def test_connection_lost_for_good_raises_typed_error_after_policy(drv):
    mt5.fake_inject("order_send", error=-10004, times=10)
    mt5.fake_inject("initialize", error=-10003, times=10)
    with pytest.raises(BrokerConnectionError) as e:
        drv.broker.market_order(buy())
    assert e.value.code in (-10003, -10004) and e.value.retryable
    assert drv.sleeps == [5.0, 5.0, 5.0]  # error_handling.mt5_connection_lost: 3 retries, 5 s apart


def test_ipc_failure_on_reads_reconnects(drv):
    mt5.fake_inject("symbol_info_tick", error=-10005)
    assert drv.broker.tick(SYM).bid == pytest.approx(2000.0)
    assert drv.sleeps == [5.0]


@pytest.mark.parametrize("retcode", [10004, 10020, 10021])
def test_requote_and_price_change_retry_with_fresh_price(drv, retcode):
    mt5.fake_inject("order_send", retcode=retcode)
    r = drv.broker.market_order(buy())
    assert r.retcode == 10009 and len(sent()) == 2
    assert sent()[1]["price"] == pytest.approx(2000.20)


@pytest.mark.parametrize("retcode, error", [(10004, RequoteError), (10020, PriceChangedError),
                                            (10021, PriceChangedError)])
def test_reprice_beyond_deviation_raises(drv, retcode, error):
    mt5.fake_inject("order_send", retcode=retcode)
    with pytest.raises(error) as e:  # asked 2000.00, fresh ask 2000.20: 20 points > deviation 10
        drv.broker.market_order(buy(price=2000.00, deviation=10))
    assert e.value.code == retcode and len(sent()) == 1


def test_requote_storm_gives_up_after_policy(drv):
    mt5.fake_inject("order_send", retcode=10004, times=5)
    with pytest.raises(RequoteError):
        drv.broker.market_order(buy())
    assert len(sent()) == 2  # order_execution_fails.max_retries (2) = total attempts


def test_invalid_fill_retries_once_with_next_mode():
    d = MT5Driver()
    mt5.fake_add_symbol(SYM, {mt5.TIMEFRAME_M5: scripted_bars()}, stops_level=20, contract_size=100,
                        filling_mode=3)  # FOK | IOC
    mt5.fake_inject("order_send", retcode=10030)
    assert d.broker.market_order(buy()).retcode == 10009
    assert [r["type_filling"] for r in sent()] == [mt5.ORDER_FILLING_FOK, mt5.ORDER_FILLING_IOC]


def test_invalid_fill_twice_is_a_typed_error(drv):
    mt5.fake_inject("order_send", retcode=10030, times=2)
    with pytest.raises(InvalidFillError) as e:
        drv.broker.market_order(buy())
    assert e.value.code == 10030 and len(sent()) == 2


def test_filling_mode_from_symbol_bits():
    from core.brokers.mt5.convert import filling_modes

    assert filling_modes(1)[0] == 0 and filling_modes(2)[0] == 1 and filling_modes(0)[0] == 2
    assert filling_modes(3)[:2] == [0, 1]


@pytest.mark.parametrize("retcode, error", [(10016, InvalidStopsError), (10018, MarketClosedError),
                                            (10019, NoMoneyError)])
def test_final_refusals_are_typed_and_not_retried(drv, retcode, error):
    mt5.fake_inject("order_send", retcode=retcode)
    with pytest.raises(error) as e:
        drv.broker.market_order(buy())
    assert e.value.code == retcode and not e.value.retryable
    assert len(sent()) == 1 and drv.sleeps == []


def test_no_money_from_the_server_checks(drv):
    with pytest.raises(NoMoneyError):
        drv.broker.market_order(buy(volume=50.0, sl=0, tp=0))


def test_trade_server_connection_retcode_retries_then_succeeds(drv):
    mt5.fake_inject("order_send", retcode=10031)
    assert drv.broker.market_order(buy()).retcode == 10009
    assert drv.sleeps == [5.0] and len(sent()) == 2


def test_trade_server_connection_retcode_persistent(drv):
    mt5.fake_inject("order_send", retcode=10031, times=10)
    with pytest.raises(BrokerConnectionError) as e:
        drv.broker.market_order(buy())
    assert e.value.code == 10031 and len(sent()) == 3 and drv.sleeps == [5.0, 5.0]  # 3 attempts in total


def test_timeout_looks_up_and_never_resends_an_order(drv):
    mt5.fake_inject("order_send", retcode=10012)
    with pytest.raises(BrokerTimeoutError) as e:
        drv.broker.market_order(buy())
    assert e.value.code == 10012 and len(sent()) == 1 and drv.broker.positions() == []
    assert drv.sleeps == [0.5, 0.5]  # 3 look-ups over order_execution_fails.retry_interval


def test_timeout_but_executed_late_is_found(drv):
    mt5.fake_inject("order_send", retcode=10012, executed=True, visible_after=2)
    r = drv.broker.market_order(buy(comment="rs:to"))
    assert r.comment == "found after retry" and len(sent()) == 1 and len(drv.broker.positions()) == 1


def test_timeout_persistent_on_an_sltp_change_is_retried(drv):
    drv.broker.market_order(buy())
    (p,) = drv.broker.positions()
    mt5.fake_inject("order_send", retcode=10012, times=5)
    with pytest.raises(BrokerTimeoutError):
        drv.broker.modify_sltp(p.ticket, 1998.5, 2005.0)  # absolute values: a resend cannot double anything
    assert len(sent()) == 3 and drv.sleeps == [1.0]  # the entry + 2 attempts in total


def test_too_many_requests_backs_off(drv):
    mt5.fake_inject("order_send", retcode=10024)
    assert drv.broker.market_order(buy()).retcode == 10009
    assert drv.sleeps == [1.0]
    mt5.fake_inject("order_send", retcode=10024, times=5)
    with pytest.raises(TooManyRequestsError):
        drv.broker.market_order(buy(comment="rs:p2"))


def test_stale_tick_refuses_to_price_an_order(drv):
    mt5.fake_set_stale(SYM)
    with pytest.raises(StaleQuoteError):
        drv.broker.market_order(buy())
    assert sent() == []


def test_symbol_is_selected_before_first_tick_and_reselected(drv):
    assert SYM not in mt5.fake_state()["selected"]
    assert drv.broker.tick(SYM).ask == pytest.approx(2000.20)
    assert SYM in mt5.fake_state()["selected"]
    mt5.S.selected.clear()  # the user removed it from Market Watch
    assert drv.broker.tick(SYM).bid == pytest.approx(2000.0)


def test_every_order_carries_magic_and_comment_within_31_chars(drv):
    drv.broker.market_order(buy(comment="rs:bb_fade:0123456789abcdef"))
    req = sent()[-1]
    assert req["magic"] == 42 and req["comment"] == "rs:bb_fade:0123456789abcdef"
    with pytest.raises(ValueError):
        drv.broker.market_order(buy(comment="x" * 32))


def test_server_time_is_converted_to_utc():
    mt5.fake_reset(server_offset_hours=2)
    bars = scripted_bars()
    bars["time"] += 7200  # the terminal reports server time (UTC+2)
    mt5.fake_add_symbol(SYM, {mt5.TIMEFRAME_M5: bars}, stops_level=20, contract_size=100)
    from core.brokers.mt5.broker import MT5Broker
    from core.domain.clock import FixedClock

    b = MT5Broker(mt5, clock=FixedClock(T0 + 600), server_utc_offset_hours=2, sleep=lambda s: None)
    b.connect()
    mt5.fake_advance(SYM, 2)
    assert b.tick(SYM).time == T0 + 600
    assert list(b.candles(SYM, Timeframe.M5, 2)["time"]) == [T0, T0 + 300]
    r = b.market_order(buy())
    assert b.positions()[0].time == T0 + 600
    assert [d.time for d in b.history_deals(r.position)] == [T0 + 600]
    assert [d.ticket for d in b.history_deals(since=T0)] == [r.deal]


def test_same_sltp_again_is_not_an_error(drv):
    r = drv.broker.market_order(buy())
    mt5.fake_inject("order_send", retcode=10025)  # TRADE_RETCODE_NO_CHANGES
    assert drv.broker.modify_sltp(r.position, 1998.0, 2005.0).retcode == 10025


def test_server_offset_is_learned_from_the_largest_fresh_estimate():
    from core.brokers.mt5.broker import MT5Broker
    from core.domain.clock import FixedClock

    mt5.fake_reset(server_offset_hours=2)
    bars = scripted_bars()
    bars["time"] += 7200
    mt5.fake_add_symbol(SYM, {mt5.TIMEFRAME_M5: bars}, stops_level=20, contract_size=100)
    mt5.fake_set_stale(SYM)  # the first quote seen is an hour old: it under-estimates the offset
    clock = FixedClock(T0)
    b = MT5Broker(mt5, clock=clock, sleep=lambda s: None)  # no offset configured: learn it
    b.tick(SYM)
    assert b.offset == 3600
    mt5.fake_set_stale(SYM, False)
    b.tick(SYM)  # a fresh quote settles it; a later stale one cannot lower it again
    assert b.offset == 7200
    mt5.fake_set_stale(SYM)
    b.tick(SYM)
    assert b.offset == 7200
    mt5.fake_advance(SYM, 2)
    assert list(b.candles(SYM, Timeframe.M5, 2)["time"]) == [T0, T0 + 300]  # server time - 2h


def test_fake_matches_the_real_api_surface():
    """Names, named-tuple fields and dtypes the adapter (and any other MT5 code) relies on."""
    for fn in ("initialize", "login", "shutdown", "last_error", "version", "terminal_info", "account_info",
               "symbol_select", "symbol_info", "symbol_info_tick", "symbols_get", "symbols_total",
               "copy_rates_from_pos", "copy_rates_from", "copy_rates_range", "positions_get", "positions_total",
               "orders_get", "orders_total", "history_deals_get", "history_orders_get", "order_send"):
        assert callable(getattr(mt5, fn))
    assert mt5.TradePosition._fields[:6] == ("ticket", "time", "time_msc", "time_update", "time_update_msc", "type")
    assert {"position_id", "entry", "reason", "commission", "fee"} <= set(mt5.TradeDeal._fields)
    assert mt5.TradeRequest._fields == ("action", "magic", "order", "symbol", "volume", "price", "stoplimit", "sl",
                                        "tp", "deviation", "type", "type_filling", "type_time", "expiration",
                                        "comment", "position", "position_by")
    assert mt5.RATES_DTYPE.names == ("time", "open", "high", "low", "close", "tick_volume", "spread", "real_volume")
    assert (mt5.TIMEFRAME_M5, mt5.TIMEFRAME_H1, mt5.TIMEFRAME_H4, mt5.TIMEFRAME_D1) == (5, 16385, 16388, 16408)
    assert (mt5.TRADE_ACTION_DEAL, mt5.TRADE_ACTION_SLTP, mt5.ORDER_FILLING_RETURN) == (1, 6, 2)


def test_malformed_request_returns_none_like_the_terminal(drv):
    assert mt5.order_send({"action": 1, "symbol": SYM, "bogus": 1}) is None
    assert mt5.last_error()[0] == mt5.RES_E_INVALID_PARAMS
