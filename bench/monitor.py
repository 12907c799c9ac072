"""Monitor cycle time and start-up recovery time.

    .venv/bin/python bench/monitor.py [--trades 200] [--symbols 20] [--cycles 200] [--stored 1000]

1. One monitor cycle over 200 open trades on 20 symbols (target <= 20 ms excluding broker latency):
   the real Monitor, exit manager, exit rules and SQLite store; the broker is an in-memory port that
   serves real candles (XAUUSD / BTCUSD / EURUSD M5, 20 symbol names over those 3 series) with zero
   latency, and the time spent inside broker calls is reported separately and subtracted.
2. Start-up recovery (`core.trading.recovery.recover`) with 1,000 stored trades that all still exist at the
   broker (target <= 1 s): load the store, reconcile by magic, sync stops.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from core.brokers.base import OrderResult, Position, SymbolInfo, Tick  # noqa: E402
from core.config.loading import load_config  # noqa: E402
from core.data.catalog import MarketData  # noqa: E402
from core.domain.clock import FixedClock  # noqa: E402
from core.domain.models import ActiveTrade, CriticalGapZones, Direction, RangeStructure, TouchCount  # noqa: E402
from core.domain.timeframes import Timeframe  # noqa: E402
from core.exits.executor import ExitExecutor  # noqa: E402
from core.exits.manager import RangeScalpingExitManager  # noqa: E402
from core.exits.monitor import Monitor  # noqa: E402
from core.ops.notify import Notifier  # noqa: E402
from core.store import Store  # noqa: E402
from core.trading.recovery import recover  # noqa: E402

REAL = ("XAUUSDc", "BTCUSDc", "EURUSDc")


class MemoryBroker:
    """The broker port over in-memory real bars: no I/O, so the cycle's own cost is what is measured."""

    name = "memory"

    def __init__(self, series: dict[str, np.ndarray], infos: dict[str, SymbolInfo], clock: FixedClock) -> None:
        self.series, self.infos, self.clock = series, infos, clock
        self.pos: dict[int, Position] = {}

    def connect(self) -> None: ...
    def close(self) -> None: ...
    def is_connected(self) -> bool:
        return True

    def now(self) -> float:
        return self.clock.now()

    def symbol_info(self, symbol: str) -> SymbolInfo:
        return self.infos[symbol]

    def _i(self, symbol: str) -> int:
        return int(np.searchsorted(self.series[symbol]["time"], self.clock.now(), side="right")) - 1

    def tick(self, symbol: str) -> Tick:
        bar = self.series[symbol][self._i(symbol)]
        pt = self.infos[symbol].point
        return Tick(time=self.clock.now(), bid=float(bar["open"]), ask=float(bar["open"]) + max(int(bar["spread"]), 1) * pt)

    def candles(self, symbol: str, timeframe: Timeframe, count: int) -> np.ndarray:
        i = self._i(symbol)
        return self.series[symbol][max(0, i - count):i]

    def positions(self, symbol=None, magic=None) -> list[Position]:
        return [p for p in self.pos.values() if (symbol is None or p.symbol == symbol)
                and (magic is None or p.magic == magic)]

    def history_deals(self, position_id=None, since=None):
        return []

    def modify_sltp(self, ticket, sl, tp) -> OrderResult:
        self.pos[ticket] = self.pos[ticket].model_copy(update={"sl": sl, "tp": tp})
        return OrderResult(retcode=10009, position=ticket)

    def close_position(self, ticket, volume=None, deviation=20, comment=""):
        raise AssertionError("the bench keeps every trade open")


def bench_config():
    """Defaults, without symbol overrides (the alias names have none) and with time exits far away, so
    every cycle evaluates all trades instead of closing them one by one."""
    cfg = load_config()
    exits = cfg.exits.model_copy(update={"max_minutes_in_trade": 1e9, "stall_minutes": 1e9})
    return cfg.model_copy(update={"symbol_overrides": {}, "exits": exits})


def build(n_trades: int, n_symbols: int, store: Store | None, cfg, magic: int):
    md = MarketData(cfg)
    real = {s: md.candles(s, Timeframe.M5) for s in REAL}
    t0 = 1_746_000_000.0  # a time all three real series cover... except EURUSD (2026): it gets its own offset
    names = [f"{REAL[i % 3]}_{i:02d}" for i in range(n_symbols)]
    series, infos = {}, {}
    for i, name in enumerate(names):
        base = real[REAL[i % 3]]
        j = int(np.searchsorted(base["time"], t0)) if REAL[i % 3] != "EURUSDc" else 2000
        arr = base[j - 500:j + 2000].copy()
        arr["time"] = arr["time"] - arr["time"][500] + int(t0)  # align every series on one replay clock
        series[name] = arr
        spec = cfg.symbols[REAL[i % 3]]
        infos[name] = SymbolInfo(name=name, digits=spec.digits, point=spec.point,
                                 trade_stops_level=spec.stops_level_points)
    clock = FixedClock(t0)
    broker = MemoryBroker(series, infos, clock)
    trades = []
    for n in range(n_trades):
        sym = names[n % n_symbols]
        arr = series[sym]
        hist = arr[452:500]
        atr = float(np.mean(hist["high"] - hist["low"]))
        # a range spanning the whole replay: the rules are fully evaluated every cycle but never fire
        hi, lo = float(arr["high"].max()) + atr, float(arr["low"].min()) - atr
        z = 0.2 * (hi - lo)
        rng = RangeStructure(symbol=sym, timeframe="M5", range_type="dynamic", range_high=hi, range_low=lo,
                             range_mid=(hi + lo) / 2, range_width_atr=(hi - lo) / atr, range_width_pct=1.0, atr=atr,
                             critical_gaps=CriticalGapZones(upper_zone_start=hi - z, upper_zone_end=hi,
                                                            lower_zone_start=lo, lower_zone_end=lo + z),
                             touch_count=TouchCount(top=2, bottom=2), validated=True,
                             start_time=float(hist["time"][0]), end_time=float(hist["time"][-1]))
        d = Direction.LONG if n % 2 else Direction.SHORT
        entry = float(arr["open"][500])
        risk = 2 * atr  # a realistic stop: MFE/MAE grow and breakeven moves happen during the run
        ticket = 1000 + n
        t = ActiveTrade(ticket=ticket, proposal_id=None, symbol=sym, strategy="bb_fade", direction=d,
                        entry_price=entry, sl=entry - d.sign * risk, tp=hi if d is Direction.LONG else lo,
                        initial_sl=entry - d.sign * risk, volume=0.01, entry_time=t0, range_data=rng, magic=magic,
                        metadata={"trade_type": "range_scalp", "range_high": hi, "range_low": lo})
        trades.append(t)
        broker.pos[ticket] = Position(ticket=ticket, symbol=sym, type="buy" if d is Direction.LONG else "sell",
                                      volume=0.01, price_open=entry, sl=t.sl, tp=t.tp, magic=magic, time=t0)
    return broker, clock, trades


async def bench_cycle(n_trades: int, n_symbols: int, cycles: int, workdir: Path) -> dict:
    cfg = bench_config()
    magic = cfg.execution.magic_number
    store = Store(workdir / "cycle.sqlite")
    broker, clock, trades = build(n_trades, n_symbols, store, cfg, magic)
    store.clock = clock
    exits = RangeScalpingExitManager(store=store, clock=clock)
    for t in trades:
        exits.register_trade(t)
    notifier = Notifier(cfg, store=store, clock=clock)
    executor = ExitExecutor(cfg, broker, store, exits, notifier)
    mon = Monitor(cfg, broker, exits, executor, notifier, clock)
    total, core = [], []
    for _ in range(cycles):
        clock.advance(300)
        rep = await mon.run_cycle()
        if rep.errors:
            raise SystemExit(f"cycle errors: {rep.errors[:3]}")
        total.append(rep.duration_ms)
        core.append(rep.duration_ms - rep.broker_ms)
    store.close()
    return {"trades": len(trades), "symbols": n_symbols, "cycles": cycles, "total": total, "core": core,
            "open_after": len(exits)}


async def bench_recovery(n: int, workdir: Path) -> dict:
    cfg = bench_config()
    magic = cfg.execution.magic_number
    path = workdir / "recovery.sqlite"
    store = Store(path)
    broker, clock, trades = build(n, 20, store, cfg, magic)
    with store.transaction():
        for t in trades:
            store.trades.add(t)
    store.close()
    times = []
    for _ in range(5):
        store = Store(path, clock=clock)  # a fresh process view: open the file, then recover
        t0 = time.perf_counter()
        exits = RangeScalpingExitManager(store=store, clock=clock)
        notifier = Notifier(cfg, store=store, clock=clock)
        executor = ExitExecutor(cfg, broker, store, exits, notifier)
        rep = await recover(cfg, store, broker, exits, None, executor, notifier, clock)
        times.append((time.perf_counter() - t0) * 1000)
        assert rep.loaded_trades == n and len(exits) == n and not rep.orphans_adopted and not rep.closed_while_down
        store.close()
    return {"stored": n, "runs_ms": times}


def _pct(xs, q):
    return float(np.percentile(np.asarray(xs), q))


def main() -> int:
    ap = argparse.ArgumentParser(description="monitor cycle and recovery timings")
    ap.add_argument("--trades", type=int, default=200)
    ap.add_argument("--symbols", type=int, default=20)
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--stored", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        c = asyncio.run(bench_cycle(args.trades, args.symbols, args.cycles, Path(d)))
        r = asyncio.run(bench_recovery(args.stored, Path(d)))
    print(f"monitor cycle: {c['trades']} open trades on {c['symbols']} symbols, {c['cycles']} cycles "
          f"(each cycle: 1 positions call, 1 tick + 1 candles call per symbol, MFE/MAE saved in one transaction)")
    print(f"  excluding broker latency: p50 {_pct(c['core'], 50):.2f} ms  p99 {_pct(c['core'], 99):.2f} ms  "
          f"mean {statistics.mean(c['core']):.2f} ms   (target <= 20 ms)")
    print(f"  including the in-memory broker calls: p50 {_pct(c['total'], 50):.2f} ms  p99 {_pct(c['total'], 99):.2f} ms")
    print(f"  trades still open after the run: {c['open_after']}")
    print(f"start-up recovery: {r['stored']} stored trades, all present at the broker, 5 runs")
    print(f"  median {statistics.median(r['runs_ms']):.1f} ms  max {max(r['runs_ms']):.1f} ms   (target <= 1000 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
