"""PaperBroker throughput in step mode (what backtests pay per bar) on real XAUUSD M5 data.

Prints: bars stepped per second with SL/TP evaluation and an order every 24 bars, and the latency of
the calls the monitor makes each cycle (tick, positions, candles M5/H1).
Run: .venv/bin/python bench/paper_broker.py
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.brokers.base import BrokerError, OrderRequest  # noqa: E402
from core.brokers.paper.broker import PaperBroker  # noqa: E402
from core.brokers.paper.feed import ReplayFeed  # noqa: E402
from core.config.loading import load_config  # noqa: E402
from core.config.paths import market_data_dir  # noqa: E402
from core.data.loaders import load_candles  # noqa: E402
from core.domain.clock import FixedClock  # noqa: E402
from core.domain.timeframes import Timeframe  # noqa: E402

SYM = "XAUUSDc"
BARS = 5000


def main() -> None:
    cfg = load_config()
    spec = cfg.symbols[SYM]
    m5 = load_candles(market_data_dir() / "budimanlai__forex-tick/data/XAUUSD_M5.csv",
                      tz_offset_hours=spec.data_tz_offset_hours)
    with tempfile.TemporaryDirectory() as d:
        for label, db in (("file (WAL, synchronous=FULL)", Path(d) / "paper.sqlite"), ("in-memory", ":memory:")):
            b = PaperBroker({SYM: spec}, ReplayFeed({SYM: {Timeframe.M5: m5}}), db_path=db,
                            clock=FixedClock(float(m5["time"][1000])), slippage_points=2)
            b.connect()
            orders = 0
            t0 = time.perf_counter()
            for i in range(BARS):
                b.step()
                if i % 24 == 0:
                    bid = b.tick(SYM).bid
                    try:
                        b.market_order(OrderRequest(symbol=SYM, side="buy", volume=0.01, sl=bid - 3, tp=bid + 3))
                        orders += 1
                    except BrokerError:
                        pass
            dt = time.perf_counter() - t0
            deals = len(b.history_deals())
            print(f"[{label}] stepped {BARS} M5 bars, {orders} orders, {deals} deals: "
                  f"{BARS / dt:,.0f} bars/s ({dt * 1e6 / BARS:.0f} us/bar)")
            for name, fn in (("tick", lambda b=b: b.tick(SYM)), ("positions", lambda b=b: b.positions()),
                             ("candles M5x96", lambda b=b: b.candles(SYM, Timeframe.M5, 96)),
                             ("candles H1x96 (resampled)", lambda b=b: b.candles(SYM, Timeframe.H1, 96))):
                runs = []
                for _ in range(200):
                    s = time.perf_counter()
                    fn()
                    runs.append(time.perf_counter() - s)
                print(f"    {name:28s} median {statistics.median(runs) * 1e6:8.1f} us")
            b.close()


if __name__ == "__main__":
    main()
