"""Second review: an approval that lands while the monitor re-runs the start-up reconciliation.

After a start-up without the broker, the monitor re-runs the reconciliation once the broker is back. It
reads the broker's positions, then judges every registered trade against them. A trade approved while
that read was on its way was not in it, so it was taken for a trade "gone from the broker without
closing deals": a critical TRADES MISSING AT THE BROKER page (and a state_corruption error toward the
auto-disable) for a trade opened a second earlier.
"""
from __future__ import annotations

import asyncio
import threading

import lifecycle_helpers as k
import pytest

SYMBOL = "XAUUSDc"
NEAR = 1_746_003_600.0  # 2025-04-30 09:00 UTC


@pytest.fixture(scope="module")
def cfg():
    return k.config()


async def test_a_trade_opened_during_the_reconciliation_rerun_is_not_missing(cfg, tmp_path):
    svc, _, inner = await k.paper_service(cfg, tmp_path, k.common_time(cfg, (SYMBOL,), near=NEAR),
                                          connect=False, start=False)
    svc.broker.connect_failures = 1  # the broker is unreachable at start-up
    rep = await svc.start(monitor=False)
    assert not rep.broker_ok and svc.monitor.reconcile_pending
    entered, release = threading.Event(), threading.Event()

    real = inner.positions
    calls = []

    def slow_positions(*a, **kw):  # the re-run's read of the positions comes back slowly
        out = real(*a, **kw)
        calls.append(1)
        if len(calls) == 1:
            entered.set()
            release.wait(10)
        return out

    inner.positions = slow_positions
    cycle = asyncio.create_task(svc.monitor.run_cycle())
    while not entered.is_set():
        await asyncio.sleep(0.005)
    (ticket,) = await k.open_trades(svc, SYMBOL)  # the trader approves meanwhile
    release.set()
    await cycle
    assert not svc.monitor.reconcile_pending
    assert not [a for a in svc.notifier.sent if a.kind == "state_mismatch"], "a fresh trade was paged as missing"
    assert ticket not in svc.recovery.unresolved
    assert svc.exits.get(ticket) is not None and svc.store.closed.get(ticket) is None
    svc.store.close()
    inner.close()
