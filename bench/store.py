"""Store and alert-layer figures: what durability (WAL + synchronous=FULL) costs per lifecycle step.

    .venv/bin/python bench/store.py [--n 500] [--stored 1000] [--threads 4]

Prints per-operation latency (median and p95, ms) for: a proposal CAS transition, `record_open`
(proposal → executed + register + journal in one transaction), `trades.update` in its own
transaction, 200 updates batched in one transaction (a monitor cycle that writes every trade),
`record_close`, loading N stored trades (start-up recovery's first step), `export()`, contended
updates from several threads, and `RangeScalpingAlerts.send` with a sink that hangs (it must not block).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.config.loading import load_config  # noqa: E402
from core.domain.clock import FixedClock  # noqa: E402
from core.domain.models import Alert, ProposalState  # noqa: E402
from core.ops.alerts import RangeScalpingAlerts  # noqa: E402
from core.store import Store, TradeMetadata  # noqa: E402
from tests.store_helpers import T0, make_closed, make_proposal, make_trade  # noqa: E402


def stats(name: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    print(f"{name:<52} median {statistics.median(ms):8.3f} ms   p95 {p95:8.3f} ms   (n={len(ms)})")


def timed(fn, n: int) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--stored", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)  # alert/log lines would drown the figures
    n = args.n
    work = Path(tempfile.mkdtemp(prefix="moneybot-bench-store-"))
    store = Store(work / "bench.sqlite", FixedClock(T0))
    print(f"store {store.path} (journal_mode=WAL, synchronous=FULL)")

    proposals = [store.proposals.create(make_proposal(f"b{i:08d}")) for i in range(n)]
    stats("proposal transition pending->approved (CAS)",
          timed(lambda i: store.proposals.transition(proposals[i].id, ProposalState.PENDING,
                                                     ProposalState.APPROVED, decided_by="1"), n))
    for p in proposals:
        store.proposals.transition(p.id, ProposalState.APPROVED, ProposalState.EXECUTING)
    metas = [TradeMetadata.from_proposal(p) for p in proposals]
    stats("record_open (executed + register + journal, 1 tx)",
          timed(lambda i: store.record_open(make_trade(10_000 + i, proposals[i].id), metadata=metas[i]), n))
    stats("trades.update (own transaction)",
          timed(lambda i: store.trades.update(10_000 + i, lambda t: setattr(t, "mfe_r", 1.0)), n))

    def batch(_):
        with store.transaction():
            for k in range(200):
                store.trades.update(10_000 + k % n, lambda t: setattr(t, "mae_r", -0.2))

    stats("200 trades.update in ONE transaction", timed(batch, 20))
    closed = [make_closed(store.trades.get(10_000 + i)) for i in range(n)]
    stats("record_close (unregister + closed + journal, 1 tx)", timed(lambda i: store.record_close(closed[i]), n))

    with store.transaction():
        for i in range(args.stored):
            store.trades.add(make_trade(50_000 + i))
    stats(f"load {args.stored} stored trades (trades.all)", timed(lambda _: store.trades.all(), 10))
    stats("export(limit=100)", timed(lambda _: store.export(100), 10))

    store.trades.add(make_trade(1))
    per = max(1, n // args.threads)

    def worker():
        for _ in range(per):
            store.trades.update(1, lambda t: setattr(t, "metadata", {"n": t.metadata.get("n", 0) + 1}))

    t = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(args.threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    dt = time.perf_counter() - t
    final = store.trades.get(1).metadata["n"]
    print(f"{args.threads} threads x {per} contended updates of one trade: {dt * 1000:.1f} ms total, "
          f"{dt / (args.threads * per) * 1000:.3f} ms/update, lost updates: {args.threads * per - final}")

    async def alerts_bench():
        alerts = RangeScalpingAlerts(load_config(), FixedClock(T0), store, sink_timeout_seconds=0.01)
        alerts.cfg.sink_max_retries = 0
        hang = asyncio.Event()

        async def stuck(_):
            await hang.wait()

        alerts.register_sink("telegram", stuck)
        samples = []
        for i in range(n):
            a = Alert(kind="bench", severity="high", title="t", text=f"x{i}", created_at=T0)
            t0 = time.perf_counter()
            alerts.send(a)
            samples.append(time.perf_counter() - t0)
        stats("alerts.send with a hanging sink (incl. alert log row)", samples)
        await alerts.close()

    asyncio.run(alerts_bench())
    store.close()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
