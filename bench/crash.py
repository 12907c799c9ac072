"""Crash test: run the trade lifecycle on the paper broker and SIGKILL it at random moments.

    .venv/bin/python bench/crash.py [--kills 300] [--seed 1] [--dir PATH] [--spawn]

Each round starts a worker process (forked from this one, so a restart costs milliseconds; `--spawn`
starts a fresh interpreter instead) that recovers (store → broker reconcile → orphans) and then
proposes, approves (sometimes twice at once: a double tap), steps the replay and runs monitor cycles
as fast as it can, until it is killed with SIGKILL after a random delay. The paper broker keeps its
own SQLite file, so as with MT5 the broker and the store never share a transaction.

Checked after every kill and every restart:
- the store opens cleanly (migrations + PRAGMA integrity_check);
- no order was sent twice for one approval (entry deals per proposal id in the broker's history <= 1);
- after recovery every broker position with our magic is monitored;
- the journal agrees with the broker's deal history (every closed trade matches its deals; every
  position the broker closed is journalled).
The same code runs in CI (`tests/test_crash_kill.py`, fewer kills).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from core.app import build_service  # noqa: E402
from core.brokers.base import BrokerError  # noqa: E402
from core.brokers.paper.broker import PaperBroker  # noqa: E402
from core.brokers.paper.feed import ReplayFeed  # noqa: E402
from core.brokers.tags import proposal_id_from_comment  # noqa: E402
from core.config.loading import load_config, validate_config_dict  # noqa: E402
from core.config.model import AppConfig, deep_merge  # noqa: E402
from core.domain.clock import FixedClock  # noqa: E402
from core.domain.models import (  # noqa: E402
    AnalysisResult,
    CriticalGapZones,
    Direction,
    RangeStructure,
    StrategyScore,
    TouchCount,
)
from core.domain.timeframes import Timeframe  # noqa: E402
from core.store import Store  # noqa: E402
from core.trading.authz import Authorizer  # noqa: E402

SYMBOL = "XAUUSDc"
TRADER = 1
START_BAR = 20_000
BARS = 12_000
OVERRIDES = {
    "exits": {"reentry_cooldown_minutes": 0, "max_reentries_per_range": 100, "max_minutes_in_trade": 45,
              "stall_minutes": 30},
    "kill_switch": {"max_errors_per_hour": 1000000, "max_critical_errors_per_hour": 1000000},
    "alerts": {"routing": {"critical": [], "high": [], "medium": [], "info": []}},
}


def crash_config() -> AppConfig:
    raw = deep_merge(load_config().model_dump(mode="json"), OVERRIDES)
    cfg, issues = validate_config_dict(raw)
    if cfg is None:
        raise SystemExit(f"bad crash config: {issues}")
    return cfg


def load_bars(cfg: AppConfig) -> np.ndarray:
    from core.data.catalog import MarketData

    return np.ascontiguousarray(MarketData(cfg).candles(SYMBOL, Timeframe.M5)[START_BAR:START_BAR + BARS])


# ---------------------------------------------------------------------------------------------- worker
def _analysis(broker: PaperBroker, bars: np.ndarray, rng: random.Random) -> AnalysisResult:
    now = broker.now()
    tick = broker.tick(SYMBOL)
    hist = bars[bars["time"] + 300 <= now][-48:]
    if len(hist) < 10:
        raise BrokerError("not enough history yet")
    atr = float(np.mean(hist["high"] - hist["low"]))
    hi, lo = float(hist["high"].max()), float(hist["low"].min())
    z = 0.2 * (hi - lo)
    rngs = RangeStructure(
        symbol=SYMBOL, timeframe="M5", range_type="dynamic", range_high=hi, range_low=lo, range_mid=(hi + lo) / 2,
        range_width_atr=(hi - lo) / atr, range_width_pct=(hi - lo) / lo * 100, atr=atr,
        critical_gaps=CriticalGapZones(upper_zone_start=hi - z, upper_zone_end=hi, lower_zone_start=lo,
                                       lower_zone_end=lo + z),
        touch_count=TouchCount(top=2, bottom=2), validated=True, start_time=float(hist["time"][0]),
        end_time=float(hist["time"][-1]),
    )
    d = Direction.LONG if rng.random() < 0.5 else Direction.SHORT
    entry = tick.ask if d is Direction.LONG else tick.bid
    risk = max(1.5 * atr, 0.5)
    s = StrategyScore(strategy="crash_probe", direction=d, entry=entry, stop_loss=round(entry - d.sign * risk, 2),
                      take_profit=round(entry + d.sign * 1.5 * risk, 2), rr=1.5, score=70.0)
    return AnalysisResult(symbol=SYMBOL, timeframe="M5", as_of=now, range=rngs, passed=True, strategies=[s],
                          confidence=70.0, session="london", confluence_score=65.0)


def _append(path: Path, record: dict) -> None:
    """One write() of one line: a kill cannot leave half a record (the reader skips a torn last line)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


async def _worker(workdir: Path, seed: int, bars: np.ndarray, ready=None) -> None:
    cfg = crash_config()
    clock = FixedClock(float(bars["time"][100]))
    spec = cfg.symbols[SYMBOL]
    broker = PaperBroker({SYMBOL: spec}, ReplayFeed({SYMBOL: {Timeframe.M5: bars}}), db_path=workdir / "paper.sqlite",
                         clock=clock, slippage_points=2)
    broker.connect()  # restores the replay clock the account stopped at
    rng = random.Random(seed)
    svc = build_service(cfg, broker=broker, clock=clock, store_path=workdir / "store.sqlite",
                        analyser=lambda s: _analysis(broker, bars, rng), sleep=_no_sleep,
                        authorizer=Authorizer([TRADER]))
    rep = await svc.start(monitor=False)
    problems = check_consistency(svc.store, broker, cfg.execution.magic_number, monitored=svc.range_scalp_tickets())
    _append(workdir / "recoveries.jsonl", {"pid": os.getpid(), "problems": problems,
                                           "report": rep.model_dump(exclude_defaults=True)})
    if ready is not None:
        ready.set()
    while True:
        if len(svc.exits) < 3 and rng.random() < 0.6:
            try:
                _, props = await svc.propose(SYMBOL)
            except BrokerError:
                props = []
            if props:
                pid = props[0].id
                if rng.random() < 0.3:  # a double tap: two approvals racing
                    await asyncio.gather(svc.approve(pid, TRADER), svc.approve(pid, TRADER))
                else:
                    await svc.approve(pid, TRADER)
        if broker.step() is None:
            _append(workdir / "events.jsonl", {"end_of_data": True})
            return
        await svc.monitor.run_cycle()


async def _no_sleep(_s: float) -> None:
    return None


def worker_entry(workdir: str, seed: int, bars: np.ndarray | None = None, ready=None) -> None:
    if bars is None:
        bars = np.load(Path(workdir) / "bars.npy")
    asyncio.run(_worker(Path(workdir), seed, bars, ready))


# ---------------------------------------------------------------------------------------------- checks
def check_consistency(store: Store, broker, magic: int, monitored=None) -> list[str]:
    """Store vs broker invariants; `monitored` (the exit manager's tickets) when a service is running."""
    problems: list[str] = []
    positions = {p.ticket: p for p in broker.positions(magic=magic)}
    deals = [d for d in broker.history_deals() if d.magic == magic]
    active = store.trades.tickets()
    watch = set(monitored) if monitored is not None else active
    for t in positions:
        if t not in watch:
            problems.append(f"broker position {t} is not monitored")
    by_pos: dict[int, list] = {}
    for d in deals:
        by_pos.setdefault(d.position_id, []).append(d)
    for pos_id, ds in by_pos.items():
        if pos_id in positions:
            continue
        closed = store.closed.get(pos_id)
        if closed is None:
            problems.append(f"position {pos_id} closed at the broker but not journalled")
            continue
        outs = [d for d in ds if d.entry in ("out", "inout")]
        vol = sum(d.volume for d in outs)
        vwap = sum(d.price * d.volume for d in outs) / vol if vol else float("nan")
        pnl = sum(d.profit + d.swap for d in ds)
        if abs(vwap - closed.exit_price) > 1e-6 or abs(pnl - closed.pnl) > 1e-6:
            problems.append(f"journal of {pos_id} disagrees with deals: exit {closed.exit_price} vs {vwap}, "
                            f"pnl {closed.pnl} vs {pnl}")
    for ct in store.closed.recent(100000):
        if ct.ticket not in by_pos:
            problems.append(f"closed trade {ct.ticket} has no deals at the broker")
    return problems


def check_after_kill(workdir: Path) -> dict:
    """Run with no worker alive: store integrity and the no-duplicate-order rule, straight from the files."""
    out = {"problems": []}
    try:
        store = Store(workdir / "store.sqlite")
        ok = store.db.query("PRAGMA integrity_check")[0][0]
        if ok != "ok":
            out["problems"].append(f"store integrity_check: {ok}")
        store.trades.all()
        store.closed.recent(10)
        out["proposals"] = {r[0]: r[1] for r in store.db.query("SELECT state, COUNT(*) FROM proposals GROUP BY state")}
        store.close()
    except Exception as e:  # noqa: BLE001
        out["problems"].append(f"store did not open cleanly: {type(e).__name__}: {e}")
    paper = workdir / "paper.sqlite"
    if paper.exists():
        con = sqlite3.connect(f"file:{paper}?mode=ro", uri=True, timeout=10)
        try:
            rows = con.execute("SELECT comment FROM deals WHERE entry='in'").fetchall()
        except sqlite3.OperationalError:
            rows = []
        finally:
            con.close()
        seen: dict[str, int] = {}
        for (comment,) in rows:
            pid = proposal_id_from_comment(comment)
            if pid:
                seen[pid] = seen.get(pid, 0) + 1
        dups = {k: v for k, v in seen.items() if v > 1}
        if dups:
            out["problems"].append(f"orders sent more than once for one approval: {dups}")
        out["orders"] = len(rows)
    return out


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a torn last line from a kill mid-write
    return out


def final_check(workdir: Path, bars: np.ndarray) -> list[str]:
    """A last clean restart in this process: recovery, then every invariant."""
    async def go() -> list[str]:
        cfg = crash_config()
        clock = FixedClock(float(bars["time"][100]))
        broker = PaperBroker({SYMBOL: cfg.symbols[SYMBOL]}, ReplayFeed({SYMBOL: {Timeframe.M5: bars}}),
                             db_path=workdir / "paper.sqlite", clock=clock, slippage_points=2)
        broker.connect()
        svc = build_service(cfg, broker=broker, clock=clock, store_path=workdir / "store.sqlite", sleep=_no_sleep,
                            authorizer=Authorizer([TRADER]))
        await svc.start(monitor=False)
        problems = check_consistency(svc.store, broker, cfg.execution.magic_number, svc.range_scalp_tickets())
        svc.store.close()
        broker.close()
        return problems

    return asyncio.run(go())


# ---------------------------------------------------------------------------------------------- driver
def run(kills: int, workdir: Path, seed: int = 1, spawn: bool = False, min_life: float = 0.02,
        max_life: float = 0.5, log=print, min_orders: int = 0) -> dict:
    """`min_orders`: keep killing past `kills` (up to 5× as many rounds) until that many orders went out.
    Lives are wall-clock, so a loaded machine trades less per life; the CI test asks for a floor of orders
    rather than hoping a fixed number of kills produces it."""
    cfg = crash_config()
    bars = load_bars(cfg)
    np.save(workdir / "bars.npy", bars)
    rng = random.Random(seed)
    ctx = mp.get_context("fork")
    problems: list[str] = []
    t0 = time.perf_counter()
    k = 0
    orders = 0
    while k < kills or (orders < min_orders and k < 5 * kills):
        life = rng.uniform(min_life, max_life)
        if spawn:
            proc = subprocess.Popen([sys.executable, __file__, "--worker", str(workdir), "--seed", str(seed * 1000 + k)])
            time.sleep(life + 0.8)  # an interpreter start costs ~0.7 s before the lifecycle runs
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        else:
            ready = ctx.Event()
            p = ctx.Process(target=worker_entry, args=(str(workdir), seed * 1000 + k, bars, ready), daemon=True)
            p.start()
            if rng.random() >= 0.25:
                # Most lives count from the end of recovery, so a loaded machine (slower start-ups) still
                # gets trading killed rather than only start-ups; a quarter count from the fork, which keeps
                # kills inside recovery itself in the mix.
                ready.wait(30.0)
            p.join(life)
            if p.is_alive():
                os.kill(p.pid, signal.SIGKILL)
            p.join()
        res = check_after_kill(workdir)
        problems += [f"kill {k}: {x}" for x in res["problems"]]
        orders = res.get("orders", 0)
        k += 1
        if any(e.get("end_of_data") for e in read_jsonl(workdir / "events.jsonl")):
            log(f"replay data exhausted after {k} kills")
            break
    kills = k
    recoveries = read_jsonl(workdir / "recoveries.jsonl")
    for i, r in enumerate(recoveries):
        problems += [f"recovery {i}: {x}" for x in r.get("problems", [])]
    problems += [f"final: {x}" for x in final_check(workdir, bars)]
    res = check_after_kill(workdir)
    store = Store(workdir / "store.sqlite")
    stats = {
        "kills": kills,
        "seconds": round(time.perf_counter() - t0, 1),
        "recoveries": len(recoveries),
        "orders": res.get("orders", 0),
        "proposals": res.get("proposals", {}),
        "closed_trades": store.closed.count(),
        "open_trades": len(store.trades.all()),
        "resolved_executing": sum(len(r["report"].get("resolved_executing", [])) for r in recoveries),
        "failed_interrupted": sum(len(r["report"].get("failed_interrupted", [])) for r in recoveries),
        "closed_while_down": sum(len(r["report"].get("closed_while_down", [])) for r in recoveries),
        "orphans_adopted": sum(len(r["report"].get("orphans_adopted", [])) for r in recoveries),
        "problems": problems,
    }
    store.close()
    return stats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", help="work directory (default: a fresh temp dir)")
    ap.add_argument("--spawn", action="store_true", help="start a fresh interpreter per round (slow, most faithful)")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    ap.add_argument("--min-orders", type=int, default=0,
                    help="keep killing past --kills (up to 5x) until this many orders went out")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    import logging

    logging.disable(logging.CRITICAL)  # the figures, not the alert log lines
    if args.worker:
        worker_entry(args.worker, args.seed)
        return 0
    workdir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="moneybot-crash-"))
    workdir.mkdir(parents=True, exist_ok=True)
    stats = run(args.kills, workdir, args.seed, spawn=args.spawn, log=lambda *_: None if args.json else print,
                min_orders=args.min_orders)
    if args.json:
        print(json.dumps(stats))
        return 1 if stats["problems"] else 0
    for k, v in stats.items():
        if k != "problems":
            print(f"{k:>20}: {v}")
    print(f"{'problems':>20}: {len(stats['problems'])}")
    for p in stats["problems"][:20]:
        print("   ", p)
    return 1 if stats["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
