"""The monitor's shortcuts give what the plain computation gives, on real bars:

- the exit rules handed the monitor's `bars_since_entry` slice decide exactly as when they search it again;
- `MarketViews.plan` (timeframe and bar count per symbol, kept per config object) equals the config's
  values, and a new config object is planned afresh;
- the replay reads the closed-trades journal only when the exit executor counted a close, and still
  collects every close the journal holds (the store's only close writer is that executor).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import lifecycle_helpers as k
import numpy as np
import pytest

from core.backtest.api import load_series
from core.backtest.engine import BacktestEngine, BacktestSpec
from core.backtest.live import LiveParts
from core.brokers.base import Tick
from core.config.loading import load_config
from core.config.paths import market_data_dir
from core.domain.models import ActiveTrade, Direction
from core.domain.timeframes import Timeframe
from core.exits import monitor as monitor_mod
from core.exits.market_views import MarketViews
from core.exits.rules import (
    bars_since_entry,
    check_early_exit_conditions,
    check_range_invalidation_during_trade,
    market_minutes,
)
from core.store.trades import ClosedTradeRepo

TF = 300
ROOT = Path(__file__).resolve().parents[1]
EUR = market_data_dir() / "01Javier__trading-eurusd" / "data" / "EURUSD_M5.csv"


@pytest.fixture(scope="module")
def cfg():
    return k.config()


def _cases(bars: np.ndarray):
    """(trade, window, tick, now) at many real moments: entries inside, at the start of and before the
    monitor's 64-bar window, both directions, stops on either side, `now` inside and far past the limits."""
    rng = np.random.default_rng(7)
    for i in rng.integers(200, len(bars) - 200, 120).tolist():
        hist = bars[i - 48:i]
        atr = float(np.mean(hist["high"] - hist["low"]))
        rd = k.range_of("XAUUSDc", hist, atr)
        for back in (0, 1, 5, 40, 63, 64, 90):
            window = bars[i - 64 + back:i + back]
            entry_time = float(bars["time"][i]) + (int(rng.integers(0, TF)) if back % 2 else 0)
            for direction in (Direction.LONG, Direction.SHORT):
                sign = direction.sign
                entry = float(bars["open"][i])
                risk = float(atr * rng.uniform(0.3, 2.0))
                trade = ActiveTrade(
                    ticket=i, symbol="XAUUSDc", strategy="s", direction=direction, entry_price=entry,
                    sl=entry - sign * risk, tp=entry + sign * 3 * risk, initial_sl=entry - sign * risk, volume=0.01,
                    entry_time=entry_time, range_data=rd, mfe_r=float(rng.uniform(0, 1)),
                )
                last = float(window["time"][-1]) + TF
                px = float(window["close"][-1])
                tick = Tick(time=last, bid=px, ask=px + 0.2)
                for now in (last, last + 3 * 3600.0, entry_time + 10 * 86400.0):
                    yield trade, window, tick, now


def test_rules_given_the_bars_decide_as_when_they_search_them(cfg):
    bars = k.m5(cfg, "XAUUSDc")
    tcfg = cfg.for_symbol("XAUUSDc")
    ri = tcfg.range_invalidation
    n = signals = 0
    for trade, window, tick, now in _cases(bars):
        for tf in (TF, 0):
            since = bars_since_entry(trade, window, tf)
            slow = check_early_exit_conditions(trade, tick, window, now, tcfg, 0.01, 2, 10, tf)
            fast = check_early_exit_conditions(trade, tick, window, now, tcfg, 0.01, 2, 10, tf, since)
            assert [s.model_dump() for s in fast] == [s.model_dump() for s in slow]
            for outside in (1, 2, 3):
                assert check_range_invalidation_during_trade(trade, window, outside, ri.outside_buffer_atr, tf, 2,
                                                             since) == \
                    check_range_invalidation_during_trade(trade, window, outside, ri.outside_buffer_atr, tf, 2)
            assert market_minutes(trade, window, tick.time, now, tf, since) == \
                market_minutes(trade, window, tick.time, now, tf)
            n += 1
            signals += len(slow)
    assert n > 1000 and signals > 100  # the cases reach the rules' signals, not only the quiet path


def test_the_monitor_hands_the_rules_the_bars_they_would_search(monkeypatch):
    """Every rule call of a real replay: the bars the monitor passes are the rules' own search, and the
    signals equal those of the rules searching again."""
    real = monitor_mod.check_early_exit_conditions
    seen = []

    def checked(trade, tick, candles, now, tcfg, point, digits, stops, tf, bars):
        own = bars_since_entry(trade, candles, tf)
        assert bars is not None and np.array_equal(bars, own) and len(bars) == len(own)
        out = real(trade, tick, candles, now, tcfg, point, digits, stops, tf, bars)
        again = real(trade, tick, candles, now, tcfg, point, digits, stops, tf)
        assert [s.model_dump() for s in out] == [s.model_dump() for s in again]
        seen.append(len(out))
        return out

    monkeypatch.setattr(monitor_mod, "check_early_exit_conditions", checked)
    cfg = load_config()
    c = load_series(cfg, "EURUSDc", EUR)[:6000]
    rep = BacktestEngine(cfg, BacktestSpec("EURUSDc", c)).run()
    assert len(rep.trades) >= 5 and len(seen) > 50 and sum(seen) > 0


def test_market_views_plan_equals_the_config_and_follows_a_new_config(cfg):
    views = MarketViews(cfg, broker=None, notifier=None, clock=None)
    for sym in cfg.symbols:
        tcfg = cfg.for_symbol(sym)
        want = (Timeframe.parse(tcfg.range_detection.timeframe), max(tcfg.range_invalidation.candles_outside_range + 2, 64))
        assert views.plan(sym) == want and views.plan(sym) == want  # first (planned) and second (kept) call
        assert views.candle_count(sym) == want[1]
    sym = next(iter(cfg.symbols))
    views.cfg = k.config({"symbol_overrides": {sym: {"range_detection": {"timeframe": "M15"},
                                                     "range_invalidation": {"candles_outside_range": 50}}}})
    assert views.plan(sym) == (Timeframe.M15, 64)


def test_the_replay_collects_every_journalled_close_reading_only_after_one(monkeypatch):
    reads: list[int] = []
    journal: list[dict] = []
    counted: list[int] = []
    real_since, real_shutdown = ClosedTradeRepo.since, LiveParts.shutdown

    def since(self, ts, symbol=None):
        reads.append(ts)
        return real_since(self, ts, symbol)

    def shutdown(self):  # the in-memory journal as the run left it, before it is closed
        journal.extend(t.model_dump(exclude={"session"}) for t in real_since(self.store.closed, -1e18))
        counted.append(self.exit_executor.closes_recorded)
        real_shutdown(self)

    monkeypatch.setattr(ClosedTradeRepo, "since", since)
    monkeypatch.setattr(LiveParts, "shutdown", shutdown)
    cfg = load_config()
    c = load_series(cfg, "EURUSDc", EUR)[:6000]
    eng = BacktestEngine(cfg, BacktestSpec("EURUSDc", c))
    rep = eng.run()
    assert len(rep.trades) >= 5 and counted == [len(journal)]
    # every close in the journal was collected, once, in exit order
    assert [t.model_dump(exclude={"session"}) for t in eng.closed] == journal
    # one read per counted close at most (plus the run's first collect), not one per monitor cycle or entry
    assert len(reads) <= len(journal) + 1


def test_the_exit_executor_is_the_only_writer_of_closed_trades():
    """`LiveParts.collect_closed` skips the journal while `ExitExecutor.closes_recorded` stands still: exact
    only while every close reaches the store through `record_broker_close`."""
    callers, sql = [], []
    for path in [*(ROOT / "core").rglob("*.py"), *(ROOT / "bot").rglob("*.py")]:
        tree = ast.parse(path.read_text())
        where = path.relative_to(ROOT).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = " ".join(node.value.upper().split())
                if re.search(r"(INSERT( OR \w+)? INTO|REPLACE INTO|UPDATE|DELETE FROM) CLOSED_TRADES\b", text):
                    sql.append(where)
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    name, owner = node.func.attr, ast.unparse(node.func.value)
                    if name == "record_close" or (name == "add" and (owner == "closed" or owner.endswith(".closed"))):
                        callers.append((where, fn.name, name))
    assert sorted(set(callers)) == [("core/exits/executor.py", "record_broker_close", "record_close"),
                                    ("core/store/store.py", "record_close", "add")]
    assert set(sql) == {"core/store/trades.py"}  # ClosedTradeRepo's own statements
