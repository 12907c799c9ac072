"""Parity: a paper session through the live TradingService and a backtest over the same bars trade alike.

The session is driven the way the bot runs it — `TradingService.propose` / `approve` (approve the top
strategy, reject the rest), and `Monitor.run_cycle` once per bar — on a PaperBroker with its own
SQLite account file; the backtest is `BacktestEngine` on the same bars. The journals must match.
"""
from __future__ import annotations

import asyncio

import pytest

from core.analysis.facade import analyse_range_scalp_opportunity
from core.app import build_service
from core.backtest.engine import BacktestEngine, BacktestSpec
from core.brokers.paper.broker import PaperBroker
from core.brokers.paper.feed import ReplayFeed
from core.config.loading import load_config
from core.config.paths import market_data_dir
from core.data.loaders import load_candles
from core.domain.clock import FixedClock
from core.store import Store
from core.trading.authz import Authorizer

XAU = market_data_dir() / "budimanlai__forex-tick" / "data" / "XAUUSD_M5.csv"
TRADER = 4242


async def _no_sleep(_s: float) -> None:
    return None


def _key(t):
    return (t.ticket, t.strategy, t.direction.value, t.entry_time, t.entry_price, t.initial_sl, t.tp,
            t.exit_time, t.exit_price, t.exit_reason, round(t.pnl, 2))


async def _paper_session(cfg, candles, first: int, last: int, tmp_path):
    sym = "XAUUSDc"
    clock = FixedClock(float(candles["time"][0]))
    pc = cfg.broker.paper
    broker = PaperBroker({sym: cfg.symbols[sym]}, ReplayFeed({sym: {"M5": candles}}), db_path=tmp_path / "paper.sqlite",
                         clock=clock, slippage_points=pc.slippage_points, commission_per_lot=pc.commission_per_lot,
                         start_balance=pc.start_balance)
    broker.connect()
    store = Store(tmp_path / "store.sqlite", clock=clock)
    svc = build_service(cfg, broker=broker, clock=clock, store=store, sleep=_no_sleep,
                        authorizer=Authorizer(trader_ids=[TRADER]),
                        analyser=lambda s: analyse_range_scalp_opportunity(s, broker, cfg, clock=clock))
    await svc.start(monitor=False)
    approvals = 0
    for i in range(first, last + 1):
        broker.advance_to(float(candles["time"][i]) + 300)
        if svc.exits.active_trades():
            await svc.monitor.run_cycle()
        if not svc.exits.active_trades():
            analysis, proposals = await svc.propose(sym)
            top = analysis.top
            if top is None or not proposals:
                continue
            chosen = next(p for p in proposals if p.strategy.strategy == top.strategy)
            out = await svc.approve(chosen.id, TRADER)
            approvals += 1
            for p in proposals:
                if p.id != chosen.id:
                    await svc.reject(p.id, TRADER)
            assert out.ok or out.message  # a refusal (e.g. re-entry rule) is a reasoned outcome
    closed = store.closed.since(0)
    await svc.stop()
    store.close()
    broker.close()
    return closed, approvals


@pytest.mark.slow
async def test_paper_session_and_backtest_produce_the_same_trades(tmp_path):
    cfg = load_config()
    candles = load_candles(XAU, tz_offset_hours=2)[:1800].copy()
    engine = BacktestEngine(cfg, BacktestSpec("XAUUSDc", candles))
    report = await asyncio.to_thread(engine.run)  # blocking by design: chat runs it in a worker thread too
    bt = [t for t in report.trades if t.exit_reason != "end_of_backtest"]
    live, approvals = await _paper_session(cfg, candles, engine.first, engine.last, tmp_path)
    assert approvals >= 5 and len(bt) >= 5
    assert sorted(map(_key, live)) == sorted(map(_key, bt))
