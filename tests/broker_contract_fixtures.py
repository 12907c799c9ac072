"""A scripted market both brokers can replay, so one contract suite runs against each of them.

Bars are M5 bid bars with a 20-point spread (ask = bid + 0.20); XAUUSD-like specs (point 0.01,
contract 100, stops level 20 points). After the scripted bars comes a 2-hour gap (market closed).
"""
from __future__ import annotations

import numpy as np

from core.brokers.mt5.broker import MT5Broker, RetryPolicy
from core.brokers.paper.broker import PaperBroker
from core.brokers.paper.feed import ReplayFeed
from core.data.candles import from_columns
from core.domain.clock import FixedClock
from core.domain.timeframes import Timeframe

SYM = "XAUUSDc"
T0 = 1741564800  # Mon 2025-03-10 00:00 UTC
PATH = [  # open, high, low, close
    (2000.00, 2000.50, 1999.50, 2000.20),
    (2000.20, 2001.00, 1999.80, 2000.80),
    (2000.80, 2002.00, 2000.50, 2001.80),
    (2001.80, 2003.50, 2001.50, 2003.20),
    (2003.20, 2003.40, 1998.00, 1998.50),
    (1998.50, 1999.00, 1996.00, 1996.50),
    (1996.50, 1996.80, 1996.20, 1996.60),
    (1996.60, 1996.90, 1996.30, 1996.70),
]


def scripted_bars() -> np.ndarray:
    n = len(PATH)
    times = [T0 + 300 * i for i in range(n)] + [T0 + 300 * n + 7200]  # then a gap, one bar after it
    o, h, lo, c = (np.array([p[k] for p in PATH] + [PATH[-1][3]]) for k in range(4))
    return from_columns(np.array(times), o, h, lo, c, np.full(n + 1, 100), np.full(n + 1, 20), None)


def gap_time() -> float:
    return T0 + 300 * len(PATH) + 3600.0


class PaperDriver:
    def __init__(self, tmp_path):
        from broker_helpers import xau_spec

        self.clock = FixedClock(T0)
        self.broker = PaperBroker({SYM: xau_spec()}, ReplayFeed({SYM: {Timeframe.M5: scripted_bars()}}),
                                  db_path=tmp_path / "paper.sqlite", clock=self.clock)
        self.broker.connect()

    def advance(self, bars: int = 1) -> None:
        for _ in range(bars):
            self.broker.step()

    def close_market(self) -> None:
        self.broker.advance_to(gap_time())


class FakeServerClock:
    """The adapter's wall clock in these tests: the fake server's current bar time (server offset 0)."""

    def __init__(self, fake):
        self.fake = fake

    def now(self) -> float:
        return float(self.fake._bar(SYM)["time"])


class MT5Driver:
    def __init__(self, tmp_path=None, fake=None, **kw):
        from fakes import fake_mt5

        self.fake = fake or fake_mt5
        self.fake.fake_reset()
        self.fake.fake_add_symbol(SYM, {self.fake.TIMEFRAME_M5: scripted_bars()}, digits=2, point=0.01,
                                  stops_level=20, contract_size=100, filling_mode=1)
        self.sleeps: list[float] = []
        opts = dict(clock=FakeServerClock(self.fake), sleep=self.sleeps.append,
                    connection_policy=RetryPolicy(3, 5.0), order_policy=RetryPolicy(2, 1.0),
                    server_utc_offset_hours=0)
        opts.update(kw)
        self.broker = MT5Broker(self.fake, **opts)
        self.broker.connect()

    def advance(self, bars: int = 1) -> None:
        self.fake.fake_advance(SYM, bars)

    def close_market(self) -> None:
        self.fake.fake_set_market_closed(SYM)
