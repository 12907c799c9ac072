"""End to end on PaperBroker (step mode) with real XAUUSD M5 data:
analyse → propose → approve → execute → monitor → breakeven move → exit, journalled with metadata and
metrics, with the alerts that were emitted."""
from __future__ import annotations

import asyncio

import lifecycle_helpers as k
import pytest

from core.domain.clock import FixedClock
from core.domain.models import ProposalState

SYMBOL = "XAUUSDc"


@pytest.fixture(scope="module")
def cfg():
    return k.config()


@pytest.fixture(scope="module")
def bars(cfg):
    return k.m5(cfg, SYMBOL)


async def _run_to_exit(svc, max_steps=80):
    reports = []
    for _ in range(max_steps):
        svc.broker.step()
        reports.append(await svc.monitor.run_cycle())
        if not svc.exits.active_trades():
            break
    return reports


async def test_full_chain_breakeven_then_exit_on_real_data(cfg, bars, tmp_path):
    setup = k.find_breakeven_then_exit(bars, 30000, risk=3.0)
    clock = FixedClock(float(bars["time"][setup.index]))
    svc = k.service(cfg, tmp_path, clock, analyser=lambda s: k.analysis_at(s, bars, clock.now(), setup))
    rec = await svc.start(monitor=False)
    assert rec.broker_ok and rec.loaded_trades == 0

    analysis, proposals = await svc.propose("xauusdc")  # case-insensitive, as traders type it
    assert analysis.symbol == SYMBOL and len(proposals) == 1
    p = proposals[0]
    assert len(p.id) <= 16 and p.state is ProposalState.PENDING
    assert p.expires_at - p.created_at == cfg.execution.proposal_expiry_seconds

    out = await svc.approve(p.id, k.TRADER)
    assert out.ok and out.state is ProposalState.EXECUTED and out.ticket
    pos = svc.broker.positions(magic=cfg.execution.magic_number)
    assert [x.ticket for x in pos] == [out.ticket]
    assert pos[0].comment.startswith(f"rs:{p.id}:") and len(pos[0].comment) <= 31
    assert pos[0].sl == pytest.approx(setup.sl) and pos[0].tp == pytest.approx(setup.tp)  # broker-side SL/TP
    assert svc.range_scalp_tickets() == {out.ticket}

    reports = await _run_to_exit(svc)
    assert not svc.exits.active_trades(), "the trade never exited"
    kinds = [s.kind for r in reports for s in r.signals]
    assert "breakeven" in kinds
    assert sum(r.sl_moves for r in reports) == 1  # moved once, never again

    journal = svc.store.journal.for_ticket(out.ticket)
    assert [e.event for e in journal] == ["opened", "sl_moved", "closed"]
    assert journal[1].data["to"] == pytest.approx(setup.entry, abs=0.05)  # entry plus costs
    meta = journal[0].metadata
    for key in ("trade_type", "strategy", "range_type", "range_high", "range_low", "confluence_score",
                "planned_rr", "session", "entry_reason"):
        assert key in meta, key
    assert meta["trade_type"] == "range_scalp" and meta["strategy"] == "bb_fade"

    closed = svc.store.closed.get(out.ticket)
    assert closed.exit_reason == "breakeven_stop"
    assert closed.mfe_r >= 1.0  # it reached the breakeven trigger
    assert closed.r_multiple == pytest.approx((closed.exit_price - closed.entry_price) / 3.0, abs=1e-6)
    deals = [d for d in svc.broker.history_deals(position_id=out.ticket) if d.entry == "out"]
    assert closed.exit_price == pytest.approx(deals[0].price) and closed.pnl == pytest.approx(deals[0].profit)

    m = svc.metrics()
    assert m.trades == 1 and m.overall.trades == 1
    assert "bb_fade" in m.by_strategy and "london" in m.by_session

    emitted = [a.kind for a in svc.notifier.sent]
    assert emitted == ["trade_opened", "breakeven_moved", "exit_executed"]
    assert svc.alerts.sent and svc.alerts.sent[-1].kind == "exit_executed"
    h = svc.health()
    assert h.open_trades == 0 and h.monitor_cycles == len(reports) and h.broker_connected
    svc.store.close()


async def test_the_background_monitor_task_runs_the_exit(cfg, bars, tmp_path):
    """Same chain, but the exit comes from the real asyncio monitor task (woken per replay step)."""
    setup = k.find_breakeven_then_exit(bars, 36000, risk=3.0)  # Monday 04:40 UTC (Tokyo session)
    clock = FixedClock(float(bars["time"][setup.index]))
    svc = k.service(cfg, tmp_path, clock, analyser=lambda s: k.analysis_at(s, bars, clock.now(), setup))
    await svc.start()
    assert svc.monitor.running
    _, props = await svc.propose(SYMBOL)
    out = await svc.approve(props[0].id, k.TRADER)
    assert out.ok
    for _ in range(80):
        cycles = svc.monitor.cycles
        svc.broker.step()
        svc.monitor.wake()
        for _ in range(2000):  # the cycle's broker calls run in worker threads: give them real time
            await asyncio.sleep(0.001)
            if svc.monitor.cycles > cycles:
                break
        if not svc.exits.active_trades():
            break
    await svc.stop()
    assert not svc.monitor.running
    closed = svc.store.closed.get(out.ticket)
    assert closed is not None and closed.metadata["breakeven_moved"] is True
    svc.store.close()


async def test_real_analysis_drives_the_chain_until_a_breakeven_exit(cfg, bars, tmp_path):
    """The same chain with the real `analyse_range_scalp_opportunity` on the paper broker's feed:
    analyse/propose every 15 minutes while flat, approve the top strategy, monitor every bar."""
    from core.app import default_analyser

    clock = FixedClock(float(bars["time"][34000]))
    broker = k.paper_broker(cfg, tmp_path / "paper.sqlite", clock)
    svc = k.service(cfg, tmp_path, clock, broker=broker)
    svc._analyser = default_analyser(cfg, broker, clock)
    await svc.start(monitor=False)
    found, analyses, executed = None, 0, 0
    for step in range(4000):  # usually found within ~100 bars; the margin absorbs scoring changes
        if not svc.exits.active_trades() and step % 3 == 0:
            analyses += 1
            analysis, props = await svc.propose(SYMBOL)
            assert analysis.symbol == SYMBOL and analysis.config_version == cfg.short_version
            if props:
                assert analysis.passed and props[0].strategy.viable
                executed += (await svc.approve(props[0].id, k.TRADER)).ok
        broker.step()
        await svc.monitor.run_cycle()
        found = next((c for c in svc.store.closed.recent(20) if c.metadata.get("breakeven_moved")), None)
        if found:
            break
    assert found is not None, f"no breakeven exit after {analyses} analyses and {executed} trades"
    events = [e.event for e in svc.store.journal.for_ticket(found.ticket)]
    assert events[0] == "opened" and "sl_moved" in events and events[-1] == "closed"
    assert found.mfe_r >= cfg.exits.breakeven_trigger_r
    meta = svc.store.journal.for_ticket(found.ticket)[0].metadata
    assert meta["trade_type"] == "range_scalp" and meta["range_type"] in ("session", "previous_day", "dynamic")
    assert meta["confluence_score"] > 0 and meta["planned_rr"] > 0 and meta["session"]
    kinds = {a.kind for a in svc.notifier.sent}
    assert {"trade_opened", "breakeven_moved", "exit_executed"} <= kinds
    m = svc.metrics()
    assert m.trades == svc.store.closed.count() >= 1
    svc.store.close()
