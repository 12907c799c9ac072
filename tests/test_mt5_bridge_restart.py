"""MT5Broker over a real rpyc bridge whose Wine side restarts: the adapter must come back on its own."""
from __future__ import annotations

import pytest
from broker_contract_fixtures import SYM, T0
from test_broker_mt5_bridge import _wait_listening, start_server

from core.brokers.base import OrderRequest
from core.brokers.mt5.broker import MT5Broker, RetryPolicy
from core.domain.clock import FixedClock

rpyc = pytest.importorskip("rpyc")


def _serve(port: str | None = None):
    proc = start_server(*([port] if port else []))
    bound = int(proc.stdout.readline())
    _wait_listening(bound)
    return proc, bound


def test_a_restarted_bridge_is_reconnected_not_dead_for_ever():
    proc, port = _serve()
    sleeps: list[float] = []
    b = MT5Broker.bridge("127.0.0.1", port, clock=FixedClock(T0), sleep=sleeps.append,
                         connection_policy=RetryPolicy(2, 0.5), server_utc_offset_hours=0)
    try:
        assert b.tick(SYM).bid == pytest.approx(2000.0)
        proc.kill()  # the Wine Python restarts (a terminal update, a crash, a reboot of the VM)
        proc.wait(timeout=10)
        proc, _ = _serve(str(port))
        assert b.tick(SYM).bid == pytest.approx(2000.0)  # the old proxies are dead: a new connection
        assert sleeps == [0.5]  # one turn of the connection policy
        r = b.market_order(OrderRequest(symbol=SYM, side="buy", volume=0.01, sl=1999.0, tp=2003.0, magic=42,
                                        comment="rs:after-restart"))
        assert r.retcode == 10009
        assert [p.comment for p in b.positions(magic=42)] == ["rs:after-restart"]
    finally:
        b.close()
        proc.kill()
        proc.wait(timeout=10)


def test_orders_reach_the_terminal_as_a_real_dict():
    """The package's order_send wants a dict, and a proxy to this side's dict is not one."""
    proc, port = _serve()
    b = MT5Broker.bridge("127.0.0.1", port, clock=FixedClock(T0), server_utc_offset_hours=0)
    try:
        r = b.market_order(OrderRequest(symbol=SYM, side="sell", volume=0.02, sl=2002.0, tp=1997.0, magic=7,
                                        comment="rs:dict"))
        assert r.retcode == 10009 and r.volume == pytest.approx(0.02)
        control = rpyc.classic.connect("127.0.0.1", port).modules.MetaTrader5
        (sent,) = control.fake_state()["requests"]
        assert sent["comment"] == "rs:dict" and sent["magic"] == 7 and sent["type"] == 1
    finally:
        b.close()
        proc.kill()
        proc.wait(timeout=10)
