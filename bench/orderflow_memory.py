"""Memory of the exchange order-flow source over a simulated 24-hour run (no network).

Run: .venv/bin/python bench/orderflow_memory.py [HOURS] [REFRESH_SECONDS]

How it is measured: `ExchangeFlowSource` runs its real `refresh` (parse, clock-skew check, merge by
trade id, trim, signals, book imbalance) every REFRESH_SECONDS of a simulated clock, for HOURS hours,
against an in-process exchange double that answers like ccxt's unified `fetch_trades` /
`fetch_order_book`: the recorded Binance BTCUSDT prints (2,001 trades in 46 s, ~43/s) replayed in a
loop with increasing ids and times, the last `trades_limit` per call. `tracemalloc` reports the
memory still allocated after each simulated hour (after a gc), plus the prints the source holds. A
bounded source shows a flat line after the first window; a leak grows with every hour.
"""
from __future__ import annotations

import asyncio
import gc
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config.loading import load_config  # noqa: E402
from core.config.paths import market_data_dir  # noqa: E402
from core.data.sources.exchange_flow import ExchangeFlowSource  # noqa: E402
from core.data.trades import load_trades  # noqa: E402
from core.domain.clock import FixedClock  # noqa: E402

TRADES = "nautechsystems__nautilus_trader/tests/test_data/binance/btcusdt-trades.parquet"


class LoopingExchange:
    """ccxt's unified answers from the recorded prints, looped forward in time as the clock advances."""

    def __init__(self, clock: FixedClock, start: float):
        self.clock, self.start = clock, start
        self.rec = load_trades(Path(market_data_dir()) / TRADES)
        self.span = float(self.rec["time"][-1] - self.rec["time"][0]) + 0.02
        self.rate = len(self.rec) / self.span

    async def fetch_trades(self, symbol, limit=500):
        n_total = int((self.clock.now() - self.start) * self.rate)
        out = []
        for k in range(max(0, n_total - limit), n_total):
            i = k % len(self.rec)
            loops = k // len(self.rec)
            t, p, q, s = self.rec[i].tolist()
            stamp = self.start + loops * self.span + (t - float(self.rec["time"][0]))
            out.append({"id": str(k), "timestamp": int(stamp * 1000), "price": p, "amount": q,
                        "side": "buy" if s > 0 else "sell"})
        return out

    async def fetch_time(self):
        return int(self.clock.now() * 1000)

    async def fetch_order_book(self, symbol, limit=10):
        p = float(self.rec["price"][-1])
        return {"bids": [[p - i, 0.5] for i in range(1, limit + 1)], "asks": [[p + i, 0.4] for i in range(1, limit + 1)]}

    async def close(self):
        pass


async def run(hours: float, every: float) -> None:
    cfg = load_config().orderflow_feeds.model_copy(update={"symbols": {"BTCUSDc": "BTC/USDT"}})
    start = 1_767_225_600.0  # any UTC time; the double's prints follow the simulated clock
    clock = FixedClock(start + 60)
    src = ExchangeFlowSource(cfg, clock, LoopingExchange(clock, start))
    tracemalloc.start()
    rows = []
    steps_per_hour = int(3600 / every)
    t0 = time.perf_counter()
    for h in range(int(hours)):
        for _ in range(steps_per_hour):
            st = await src.refresh("BTCUSDc")
            if st.problem:
                raise SystemExit(f"refresh failed: {st.problem}")
            clock.advance(every)
        gc.collect()
        cur, peak = tracemalloc.get_traced_memory()
        rows.append((h + 1, cur, peak, src.held_trades()))
    tracemalloc.stop()
    took = time.perf_counter() - t0
    print(f"order-flow source memory: {hours:g} simulated hours, refresh every {every:g} s "
          f"({int(hours) * steps_per_hour} refreshes, {took:.1f} s wall), window {cfg.window_seconds:g} s, "
          f"cap {cfg.max_trades_kept} prints")
    for h, cur, peak, held in rows:
        if h in (1, 2, 6, 12, 18, 24) or h == len(rows):
            print(f"  hour {h:>2}: traced {cur / 1024:8.1f} KiB (peak {peak / 1024:8.1f} KiB), prints held {held}")
    growth = rows[-1][1] - rows[0][1]
    print(f"  growth hour 1 -> hour {rows[-1][0]}: {growth / 1024:+.1f} KiB")


if __name__ == "__main__":
    hours = float(sys.argv[1]) if len(sys.argv) > 1 else 24
    every = float(sys.argv[2]) if len(sys.argv) > 2 else 10
    asyncio.run(run(hours, every))
