"""MT5Broker through a REAL rpyc bridge (pymt5linux-style) to the fake MetaTrader5 in another process."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from broker_contract_fixtures import SYM, T0

from core.brokers.base import BrokerConnectionError, OrderRequest, Position
from core.brokers.mt5.broker import MT5Broker, RetryPolicy
from core.data.candles import CANDLE_DTYPE
from core.domain.clock import FixedClock
from core.domain.timeframes import Timeframe

rpyc = pytest.importorskip("rpyc")
SERVER = Path(__file__).resolve().parent / "broker_bridge_server.py"


def _wait_listening(port: int, timeout: float = 10.0) -> None:
    """The server prints its port when bound; it starts listening a moment later."""
    import socket
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def start_server(*args: str):
    return subprocess.Popen([sys.executable, str(SERVER), *args], stdout=subprocess.PIPE, text=True)


@pytest.fixture
def bridge():
    proc = start_server()
    try:
        port = int(proc.stdout.readline())
        _wait_listening(port)
        yield port, proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_adapter_over_real_rpyc_bridge(bridge):
    port, proc = bridge
    sleeps = []
    b = MT5Broker.bridge("127.0.0.1", port, clock=FixedClock(T0), sleep=sleeps.append,
                         connection_policy=RetryPolicy(2, 0.5))
    b.connect()
    control = rpyc.classic.connect("127.0.0.1", port).modules.MetaTrader5  # the test's remote hand

    q = b.tick(SYM)
    assert (q.bid, q.ask) == (pytest.approx(2000.0), pytest.approx(2000.2)) and type(q.bid) is float
    control.fake_advance(SYM, 2)
    bars = b.candles(SYM, Timeframe.M5, 5)
    assert type(bars) is np.ndarray and bars.dtype == CANDLE_DTYPE  # a local copy (isinstance passes a netref)
    assert list(bars["time"]) == [T0, T0 + 300]

    r = b.market_order(OrderRequest(symbol=SYM, side="buy", volume=0.01, sl=1999.0, tp=2003.0, magic=42,
                                    comment="rs:bridge"))
    assert r.retcode == 10009 and r.price == pytest.approx(2001.0)
    (p,) = b.positions(magic=42)
    assert type(p) is Position and type(p.ticket) is int and type(p.comment) is str

    control.fake_inject("order_send", error=-10005)  # an IPC timeout across the bridge: reconnect, resend
    b.modify_sltp(p.ticket, 1999.5, 2003.0)
    assert b.positions()[0].sl == pytest.approx(1999.5) and sleeps == [0.5]

    control.fake_advance(SYM, 2)  # bar 3 reaches 2003.50 -> TP
    deals = b.history_deals(p.ticket)
    assert [(d.entry, d.reason) for d in deals] == [("in", "expert"), ("out", "tp")]
    assert deals[1].profit == pytest.approx(2.0)  # (2003.00 - 2001.00) * 0.01 * 100

    proc.kill()  # the Wine side dies: typed error after the connection policy, no hang, no traceback
    proc.wait(timeout=10)
    with pytest.raises(BrokerConnectionError):
        b.account_info()
    assert sleeps == [0.5, 0.5, 0.5]
    b.close()


def test_bridge_unreachable_is_a_connection_error():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(BrokerConnectionError) as e:
        MT5Broker.bridge("127.0.0.1", port)
    assert str(port) in e.value.message


def test_rates_cross_a_bridge_that_refuses_pickle(monkeypatch):
    refused = []

    def refuse(proxy):
        refused.append(proxy)
        raise ValueError("pickling is disabled")

    monkeypatch.setattr(rpyc.classic, "obtain", refuse)  # as a server configured without allow_pickle
    proc = start_server()
    try:
        port = int(proc.stdout.readline())
        _wait_listening(port)
        b = MT5Broker.bridge("127.0.0.1", port, clock=FixedClock(T0), server_utc_offset_hours=0)
        rpyc.classic.connect("127.0.0.1", port).modules.MetaTrader5.fake_advance(SYM, 3)
        bars = b.candles(SYM, Timeframe.M5, 3)
        assert bars.dtype == CANDLE_DTYPE and list(bars["time"]) == [T0, T0 + 300, T0 + 600]
        assert list(bars["close"]) == [2000.20, 2000.80, 2001.80]
        assert type(bars) is np.ndarray and refused  # the fallback ran, and the result is local
        b.close()
    finally:
        proc.kill()
        proc.wait(timeout=10)
