"""The monitor's shortcuts give what the plain computation gives, on real bars:

- the exit rules handed the monitor's `bars_since_entry` slice decide exactly as when they search it again;
- `MarketViews.plan` (timeframe and bar count per symbol, kept per config object) equals the config's
  values, and a new config object is planned afresh;
- the replay reads the closed-trades journal only when the exit executor counted a close, and still
  collects every close the journal holds (the store's only close writer is that executor).
"""
from __future__ import annotations

import ast
import random
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
from core.domain.clock import FixedClock
from core.domain.models import ActiveTrade, ClosedTrade, Direction
from core.domain.timeframes import Timeframe
from core.exits import monitor as monitor_mod
from core.exits.manager import RANGE_BROKEN, RangeScalpingExitManager
from core.exits.market_views import MarketViews
from core.exits.reentry_index import EntryIndex, same_range
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


def test_the_replay_collects_every_journalled_close_in_one_read_after_the_run(monkeypatch):
    reads: list[int] = []
    skipped: list[int] = []
    journal: list[dict] = []
    counted: list[int] = []
    real_since, real_shutdown = ClosedTradeRepo.since, LiveParts.shutdown

    def since(self, ts, symbol=None, skip=()):
        reads.append(ts)
        out, full = real_since(self, ts, symbol, skip), real_since(self, ts, symbol)
        # what is skipped is exactly what the full read has more
        assert out == [c for c in full if c.ticket not in skip]
        skipped.append(len(full) - len(out))
        return out

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
    # one read, after the run (a read after every cycle that journalled a close is compared with it in
    # tests/test_close_path_fast_paths.py, where the reads meet trades collected already)
    assert len(reads) == 1 and skipped == [0]


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


def test_reentry_facts_kept_per_range_follow_every_change_of_the_entries(monkeypatch):
    """The re-entry verdicts, asked twice per range and moment (the second one from the facts kept per range),
    equal a full scan of the entries after every entry, close (broken ranges too) and reload."""
    bars = k.m5(k.config())
    rnd = random.Random(11)
    t0 = 1_750_000_000.0
    mgr = RangeScalpingExitManager(clock=FixedClock(t0))
    scans = []
    real_facts = EntryIndex.facts
    monkeypatch.setattr(EntryIndex, "facts", lambda self, *a: scans.append(a) or real_facts(self, *a))
    edges = []
    for s in rnd.sample(range(1000, len(bars) - 400), 8):
        w = bars[s:s + rnd.randint(12, 200)]
        edges.append(k.range_of("XAUUSDc", w, atr=1.0))

    def reference(sym, r, now, cooldown, cap, pending):
        same = [e for e in mgr._entries
                if e.symbol == sym and same_range(e.range_high, e.range_low, r.range_high, r.range_low)]
        n = len(same) + sum(1 for ps, pr in pending
                            if ps == sym and same_range(pr.range_high, pr.range_low, r.range_high, r.range_low))
        broken = [e.exit_time for e in same if e.broken and e.exit_time is not None]
        if broken:
            return ("broken", max(broken))
        if n > cap:
            return ("cap", n)
        exits = [e.exit_time for e in same if e.exit_time is not None]
        if exits and cooldown > 0 and max(exits) + cooldown * 60 - now > 0:
            return ("cooldown", max(exits), max(exits) + cooldown * 60)
        return ("ok", len(same))

    open_: list[ActiveTrade] = []
    closed: list[ClosedTrade] = []
    kinds = set()
    asks = 0
    for step in range(240):
        now = t0 + step * 300.0
        for sym in ("XAUUSDc", "EURUSDc"):
            for r in edges:
                for cooldown, cap, pending in ((30.0, 2, ()), (0.0, 4, ()), (45.0, 1, ((sym, r),))):
                    before = len(scans)
                    want = reference(sym, r, now, cooldown, cap, pending)
                    assert mgr._reentry_verdict(sym, r, now, cooldown, cap, pending) == want
                    assert mgr._reentry_verdict(sym, r, now, cooldown, cap, pending) == want
                    asks += 1
                    assert len(scans) - before <= 1  # the second ask (and most first ones) read no entries
                    kinds.add(want[0])
        r = rnd.choice(edges)
        sym = "XAUUSDc" if rnd.random() < 0.8 else "EURUSDc"
        if rnd.random() < 0.6:
            t = ActiveTrade(ticket=step + 1, symbol=sym, strategy="bb_fade", direction=Direction.LONG, entry_price=100.0,
                            sl=99.0, tp=102.0, initial_sl=99.0, volume=0.01, entry_time=now, range_data=r)
            open_.append(mgr.register_trade(t))
        for t in [t for t in open_ if rnd.random() < 0.4]:
            open_.remove(t)
            reason = RANGE_BROKEN if rnd.random() < 0.1 else "take_profit"
            mgr.unregister_trade(t.ticket, exit_time=now + 60.0, exit_reason=reason)
            closed.append(ClosedTrade(
                ticket=t.ticket, symbol=t.symbol, strategy="bb_fade", direction=Direction.LONG, volume=0.01,
                entry_price=100.0, exit_price=101.0, initial_sl=99.0, tp=102.0, entry_time=t.entry_time,
                exit_time=now + 60.0, pnl=1.0, r_multiple=1.0, exit_reason=reason,
                metadata={"range_high": t.range_data.range_high, "range_low": t.range_data.range_low}))
        if step % 80 == 79:  # a restart: the entries come back from the journal
            mgr.load(open_, closed)
    assert kinds == {"ok", "cap", "cooldown", "broken"} and asks > 5000
    assert len(scans) < asks / 2  # the kept facts answered most asks
