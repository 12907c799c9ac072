"""Engine details: auto-approval choice, period bounds, end-of-run closes."""
from __future__ import annotations

import pytest

from core.backtest.engine import BacktestEngine, BacktestSpec, pick_strategy
from core.config.loading import load_config
from core.config.paths import market_data_dir
from core.data.candles import empty
from core.data.loaders import load_candles
from core.domain.exceptions import UserFacingError
from core.domain.models import AnalysisResult, Direction, StrategyScore
from tests.backtest_probe import edge_fade

XAU = market_data_dir() / "budimanlai__forex-tick" / "data" / "XAUUSD_M5.csv"


def _s(name, score, viable=True):
    return StrategyScore(strategy=name, direction=Direction.LONG, entry=100, stop_loss=99, take_profit=102, rr=2,
                         score=score, viable=viable)


def test_pick_strategy_auto_named_and_blocked():
    res = AnalysisResult(symbol="X", timeframe="M5", as_of=0, passed=True,
                         strategies=[_s("rsi_bounce", 90, viable=False), _s("bb_fade", 80), _s("vwap_reversion", 60)])
    assert pick_strategy(res, "auto").strategy == "bb_fade"  # top *viable*
    assert pick_strategy(res, "vwap_reversion").strategy == "vwap_reversion"
    assert pick_strategy(res, "rsi_bounce") is None  # named but not viable now
    res.passed = False
    assert pick_strategy(res, "auto") is None  # blocked by a filter: never approved


def test_named_strategy_only_trades_that_strategy():
    cfg = load_config()
    c = load_candles(XAU, tz_offset_hours=2)[:2500]
    rep = BacktestEngine(cfg, BacktestSpec("XAUUSDc", c, strategy="rsi_bounce"), analyse_fn=edge_fade).run()
    assert rep.trades == [] and rep.signals == []  # the probe only offers bb_fade
    rep = BacktestEngine(cfg, BacktestSpec("XAUUSDc", c, strategy="bb_fade"), analyse_fn=edge_fade).run()
    assert rep.trades and {t.strategy for t in rep.trades} == {"bb_fade"}


def test_every_trade_is_closed_and_journalled_by_the_end():
    cfg = load_config()
    c = load_candles(XAU, tz_offset_hours=2)[:2000]
    eng = BacktestEngine(cfg, BacktestSpec("XAUUSDc", c), analyse_fn=edge_fade)
    rep = eng.run()
    filled = [s for s in rep.signals if s.ticket is not None]
    assert len(rep.trades) + rep.open_at_end == len(filled) and rep.open_at_end == eng.open_at_end
    assert all(s.exit_time is not None for s in filled) or eng.open_at_end
    assert all(t.exit_time >= t.entry_time for t in rep.trades)
    assert rep.metrics.trades == len(rep.trades)


def test_empty_series_is_a_clear_error():
    with pytest.raises(UserFacingError):
        BacktestEngine(load_config(), BacktestSpec("XAUUSDc", empty(0)))


def test_a_cancelled_run_releases_its_loop_store_and_broker():
    """A chat shutdown cancels a running /backtest through its progress callback; the run's event loop and
    in-memory SQLite connections must be closed then too, not left for the garbage collector."""
    cfg = load_config()
    c = load_candles(XAU, tz_offset_hours=2)[:2000]

    class Stopped(Exception):
        pass

    def progress(done, total):
        if done > 0:
            raise Stopped

    eng = BacktestEngine(cfg, BacktestSpec("XAUUSDc", c), analyse_fn=edge_fade, progress=progress)
    with pytest.raises(Stopped):
        eng.run()
    assert eng.parts._loop.is_closed()
    with pytest.raises(Exception, match="closed"):
        eng.parts.store.db.execute("SELECT 1")


def test_a_run_restores_the_garbage_collector_as_it_found_it():
    """A run freezes the objects alive before it and collects the young generation less often; both are
    process-wide, so a finished (or failed) run must hand the live bot its collector back unchanged."""
    import gc

    from core.backtest.engine import RUN_GC_GEN0

    cfg = load_config()
    c = load_candles(XAU, tz_offset_hours=2)[:1200]
    seen = []

    def probe(*args):
        seen.append((gc.get_threshold()[0], gc.get_freeze_count() > 0))
        return edge_fade(*args)

    before = (gc.get_threshold(), gc.get_freeze_count())
    BacktestEngine(cfg, BacktestSpec("XAUUSDc", c), analyse_fn=probe).run()
    assert seen and all(t == max(before[0][0], RUN_GC_GEN0) and frozen for t, frozen in seen)
    assert (gc.get_threshold(), gc.get_freeze_count()) == before

    def boom(*args):
        raise RuntimeError("analysis failed")

    with pytest.raises(RuntimeError):
        BacktestEngine(cfg, BacktestSpec("XAUUSDc", c), analyse_fn=boom).run()
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
