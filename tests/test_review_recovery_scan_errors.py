"""Review of start-up recovery when the deal-history scan hits an unexpected error.

The scan for positions that opened and closed unseen is a catch-up that the next scan repeats from
the same watermark. Only BrokerError was caught around it: anything else (a bridge returning a
malformed history, a bug in one row) escaped `recover()`, so `start()` failed and nothing at all was
monitored; when the reconciliation was re-run by the monitor (broker down at start-up), the same
error escaped every cycle before any exit was judged. Real-data paper broker, real restarts.
"""
from __future__ import annotations

import lifecycle_helpers as k
import pytest

from core.domain.clock import FixedClock
from core.exits.adoption import DEAL_SCAN_KEY


@pytest.fixture(scope="module")
def cfg():
    return k.config()


def _end(svc):
    svc.store.close()
    svc.broker.inner.close()


async def test_a_malformed_history_during_the_startup_scan_does_not_stop_the_start(cfg, tmp_path):
    clock = FixedClock(float(k.m5(cfg)["time"][30000]))
    svc, _, _ = await k.paper_service(cfg, tmp_path, clock, connect=False)
    (ticket,) = await k.open_trades(svc, "XAUUSDc")
    _end(svc)

    svc2, _, _ = await k.paper_service(cfg, tmp_path, clock, connect=False, start=False)
    before = svc2.store.kv.get(DEAL_SCAN_KEY)
    svc2.broker.fail("history_deals", ValueError("bridge returned a malformed deals array"))
    rep = await svc2.start(monitor=False)
    assert rep.broker_ok and svc2.ready and ticket in svc2.range_scalp_tickets()
    assert svc2.store.kv.get(DEAL_SCAN_KEY) == before  # the next scan reads the same window again
    assert svc2.store.errors.recent(5, "state_corruption")
    cyc = await svc2.monitor.run_cycle()
    assert cyc.trades == 1 and not cyc.errors
    _end(svc2)


async def test_a_reconciliation_rerun_that_crashes_does_not_cost_the_cycles_exits(tmp_path):
    """When the broker was down at start-up, each cycle re-runs the reconciliation first. An unexpected
    error in it (here a malformed history while resolving a proposal a crash left `executing`) escaped
    the cycle before any trade was judged, every cycle, so no exit ever ran."""
    from core.domain.models import ProposalState

    cfg = k.config({"exits": {"max_minutes_in_trade": 5}})
    clock = FixedClock(k.common_time(cfg, ("XAUUSDc",), near=1_746_003_600.0))
    svc, _, _ = await k.paper_service(cfg, tmp_path, clock, connect=False)
    (ticket,) = await k.open_trades(svc, "XAUUSDc")
    _, props = await svc.propose("XAUUSDc")  # the process dies while this one is being sent
    assert svc.store.proposals.transition(props[0].id, ProposalState.PENDING, ProposalState.APPROVED)
    assert svc.store.proposals.transition(props[0].id, ProposalState.APPROVED, ProposalState.EXECUTING)
    _end(svc)

    svc2, _, _ = await k.paper_service(cfg, tmp_path, clock, connect=False, start=False)
    svc2.broker.connect_failures = 1  # the broker is unreachable at start-up
    rep = await svc2.start(monitor=False)
    assert not rep.broker_ok and svc2.monitor.reconcile_pending
    svc2.broker.inner.step()
    svc2.broker.inner.step()  # past the 5-minute limit
    svc2.broker.fail("history_deals", ValueError("bridge returned a malformed deals array"))
    cyc = await svc2.monitor.run_cycle()
    assert cyc.exits == 1 and svc2.store.closed.get(ticket).exit_reason == "max_time_in_trade"
    assert svc2.monitor.reconcile_pending  # tried again next cycle
    await svc2.monitor.run_cycle()
    assert not svc2.monitor.reconcile_pending
    assert svc2.store.proposals.get(props[0].id).state is ProposalState.FAILED  # nothing at the broker
    _end(svc2)
