"""One retry policy (issue 14 §8): `max_retries` is the total number of attempts everywhere, an order is
resent only after positions and deals prove the broker did not act, and each operation's worst-case wall
time (documented in docs/brokers.md and `core.brokers.mt5.orders.worst_case_seconds`) holds on a fake clock."""
from __future__ import annotations

import types

import lifecycle_helpers as k
import pytest
from broker_contract_fixtures import SYM, MT5Driver
from fakes import fake_mt5 as mt5
from mt5_lifecycle_helpers import SYMBOL, MT5World

from core.brokers.base import BrokerConnectionError, OrderRequest, TooManyRequestsError
from core.brokers.mt5.orders import RetryPolicy, worst_case_seconds
from core.domain.retry import attempts_of, run_sync


class FakeClock:
    """Wall time that moves only by the sleeps the code asks for."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


def buy(comment="rs:w", **kw):
    return OrderRequest(**{**dict(symbol=SYM, side="buy", volume=0.01, sl=1998.0, tp=2005.0, magic=42,
                                  comment=comment), **kw})


def test_max_retries_is_the_total_number_of_attempts():
    calls = []

    def boom(i):
        calls.append(i)
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        run_sync(3, 5.0, boom, sleep=lambda s: None)
    assert calls == [0, 1, 2] and attempts_of(0) == 1 and attempts_of(3) == 3


def test_the_config_policies_read_as_total_attempts_in_the_adapter():
    cfg = k.config()
    conn, orders = cfg.error_handling["mt5_connection_lost"], cfg.error_handling["order_execution_fails"]
    d = MT5Driver(connection_policy=RetryPolicy(conn.max_retries, conn.retry_interval),
                  order_policy=RetryPolicy(orders.max_retries, orders.retry_interval))
    inits = mt5.fake_state()["init_calls"]
    mt5.fake_inject("symbol_info_tick", error=-10004, times=10)
    mt5.fake_inject("initialize", error=-10003, times=10)
    with pytest.raises(BrokerConnectionError):
        d.broker.tick(SYM)
    assert mt5.fake_state()["init_calls"] - inits == conn.max_retries  # 3 re-initialisations, not 1 + 3
    mt5.fake_reset()
    d2 = MT5Driver(order_policy=RetryPolicy(orders.max_retries, orders.retry_interval))
    mt5.fake_inject("order_send", retcode=10024, times=10)
    with pytest.raises(TooManyRequestsError):
        d2.broker.market_order(buy())
    assert len(mt5.fake_state()["requests"]) == orders.max_retries


def test_worst_case_wall_time_of_the_configured_policies_is_documented():
    cfg = k.config()
    conn, orders = cfg.error_handling["mt5_connection_lost"], cfg.error_handling["order_execution_fails"]
    ex = cfg.error_handling["exit_order_fails"]
    w = worst_case_seconds(RetryPolicy(conn.max_retries, conn.retry_interval),
                           RetryPolicy(orders.max_retries, orders.retry_interval),
                           exit_attempts=ex.max_retries, exit_interval=ex.retry_interval)
    # the figures docs/brokers.md states for the shipped config
    assert w == {"entry": 32.0, "sltp": 25.0, "close_attempt": 31.0, "exit": 97.0, "connect": 15.0}


def test_entry_worst_case_on_a_fake_clock():
    """The longest entry we can provoke: the IPC link drops (reconnect takes all 3 attempts), the look-ups
    show nothing, the resend meets a dead trade server (10031) until the budget is spent."""
    clock = FakeClock()
    d = MT5Driver(sleep=clock.sleep)
    budget = worst_case_seconds(d.broker.connection_policy, d.broker.order_policy)["entry"]
    mt5.fake_inject("order_send", error=-10004)
    mt5.fake_inject("initialize", error=-10003, times=2)  # the third re-initialise works
    mt5.fake_inject("order_send", retcode=10031, times=10)
    with pytest.raises(BrokerConnectionError):
        d.broker.market_order(buy())
    assert clock.t == pytest.approx(30.0) and clock.t <= budget
    # the send lost to the IPC failure (proven not to have acted) + 3 attempts, the connection policy's total
    assert len(mt5.fake_state()["requests"]) == 4 and d.broker.positions() == []


def test_a_second_link_loss_in_the_same_operation_does_not_reconnect_again():
    clock = FakeClock()
    d = MT5Driver(sleep=clock.sleep)
    mt5.fake_inject("order_send", error=-10004)
    mt5.fake_inject("positions_get", error=-10004, times=10)  # the look-ups fail too
    inits = mt5.fake_state()["init_calls"]
    with pytest.raises(BrokerConnectionError) as e:
        d.broker.market_order(buy())
    assert "not resent" in e.value.message and len(mt5.fake_state()["requests"]) == 1  # absence not proven
    assert clock.t <= worst_case_seconds(d.broker.connection_policy, d.broker.order_policy)["entry"]
    assert mt5.fake_state()["init_calls"] - inits == 1  # one reconnect in the operation


def test_order_is_resent_only_after_positions_and_deals_prove_nothing_acted():
    clock = FakeClock()
    d = MT5Driver(sleep=clock.sleep)
    seen = []
    real_pos, real_deals = mt5.positions_get, mt5.history_deals_get
    mt5.fake_inject("order_send", error=-10004)

    def pos(*a, **kw):
        seen.append(("positions", len(mt5.fake_state()["requests"])))
        return real_pos(*a, **kw)

    def deals(*a, **kw):
        seen.append(("deals", len(mt5.fake_state()["requests"])))
        return real_deals(*a, **kw)

    d.broker.mt5 = types.SimpleNamespace(**{n: getattr(mt5, n) for n in dir(mt5) if not n.startswith("__")})
    d.broker.mt5.positions_get, d.broker.mt5.history_deals_get = pos, deals
    d.broker.market_order(buy(comment="rs:proof"))
    before_resend = [kind for kind, sent in seen if sent == 1]
    assert "positions" in before_resend and "deals" in before_resend  # both read before the 2nd send
    assert len(mt5.fake_state()["requests"]) == 2 and len(d.broker.positions()) == 1


async def test_a_lost_terminal_costs_one_policy_per_monitor_cycle_not_its_square(tmp_path):
    cfg = k.config()
    bars = k.m5(cfg, SYMBOL)
    w = MT5World(cfg, tmp_path, bars, 30000, 2, analyser=None)
    await w.svc.start(monitor=False)
    w.sleeps.clear()
    mt5.fake_inject("positions_get", error=-10004, times=100)
    mt5.fake_inject("initialize", error=-10003, times=100)
    rep = await w.svc.monitor.run_cycle()
    conn = cfg.error_handling["mt5_connection_lost"]
    assert not rep.connected and sum(w.sleeps) == pytest.approx(conn.max_retries * conn.retry_interval)  # 15 s
    w.svc.store.close()


@pytest.mark.parametrize("retcode", [10004, 10024, 10031])
def test_a_refusal_whose_order_did_act_is_found_not_resent(retcode):
    """A refusal says "not executed"; the resend still waits for positions and deals to agree. A terminal
    that answered a refusal for an order the server did fill gets no second order."""
    d = MT5Driver()
    mt5.fake_inject("order_send", retcode=retcode, executed=True)
    r = d.broker.market_order(buy(comment="rs:acted"))
    assert r.retcode == 10009 and len(mt5.fake_state()["requests"]) == 1 and len(d.broker.positions()) == 1
