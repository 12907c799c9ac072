"""The wired service on the MT5 adapter over the fake terminal, replaying real XAUUSD M5 bars, on either
account model (hedging / netting). Used by the lifecycle scenarios of issue 14 and by bench/mt5_faults.py."""
from __future__ import annotations

import lifecycle_helpers as k
import numpy as np
from fakes import fake_mt5 as mt5

from core.app import build_service
from core.brokers.mt5.broker import MT5Broker, RetryPolicy
from core.domain.clock import FixedClock
from core.trading.authz import Authorizer

SYMBOL = "XAUUSDc"
HEDGING, NETTING = 2, 0
MODES = {"hedging": HEDGING, "netting": NETTING}


class MT5World:
    """The fake terminal + the adapter + the service, moved one real bar at a time."""

    def __init__(self, cfg, tmp_path, bars: np.ndarray, start: int, mode: int, analyser=None, store_name="store.sqlite"):
        self.cfg, self.tmp_path, self.bars, self.mode = cfg, tmp_path, bars, mode
        spec = cfg.symbols[SYMBOL]
        mt5.fake_reset(balance=10_000.0)
        mt5.fake_add_symbol(SYMBOL, {mt5.TIMEFRAME_M5: bars}, digits=spec.digits, point=spec.point,
                            stops_level=spec.stops_level_points, contract_size=spec.contract_size,
                            start_index=start)
        mt5.fake_set_account(margin_mode=mode)
        self.clock = FixedClock(self.bar_time())
        self.sleeps: list[float] = []
        self.broker = self.new_broker()
        self.store_name = store_name
        self.svc = self.new_service(analyser)

    async def _sleep(self, s: float) -> None:
        """The engine's and monitor's waits: recorded with the adapter's, none of them real."""
        self.sleeps.append(s)

    def new_service(self, analyser):
        return build_service(self.cfg, broker=self.broker, clock=self.clock,
                             store_path=self.tmp_path / self.store_name, analyser=analyser, sleep=self._sleep,
                             authorizer=Authorizer([k.TRADER], [k.VIEWER]))

    def new_broker(self) -> MT5Broker:
        return MT5Broker(mt5, clock=self.clock, sleep=self.sleeps.append, server_utc_offset_hours=0,
                         connection_policy=RetryPolicy(3, 5.0), order_policy=RetryPolicy(2, 1.0))

    def bar_time(self) -> float:
        return float(mt5._bar(SYMBOL)["time"]) + 1  # a second into the forming bar: its open is the quote

    def step(self, bars: int = 1) -> None:
        mt5.fake_advance(SYMBOL, bars)
        self.clock.set(self.bar_time())

    def restart(self, analyser=None):
        """A crash: the process is gone (no stop), a new one starts on the same store and terminal."""
        self.broker = self.new_broker()
        self.svc = self.new_service(analyser)
        return self.svc
