"""No look-ahead in the backtest's decisions: removing the bars after t changes nothing decided by t."""
from __future__ import annotations

import pytest

from core.backtest.engine import BacktestEngine, BacktestSpec
from core.config.loading import load_config
from core.config.paths import market_data_dir
from core.data.loaders import load_candles
from tests.backtest_probe import edge_fade

XAU = market_data_dir() / "budimanlai__forex-tick" / "data" / "XAUUSD_M5.csv"


def _decisions(signals, upto: int):
    return [(s.decision_bar, s.side, s.strategy, s.requested_entry, s.sl, s.tp, s.entry_bar, s.entry_price)
            for s in signals if s.decision_bar <= upto]


@pytest.mark.parametrize("decider", ["probe", "live"])
def test_decisions_up_to_t_do_not_depend_on_later_bars(decider):
    cfg = load_config()
    full = load_candles(XAU, tz_offset_hours=2)[:3000]
    fn = edge_fade if decider == "probe" else None
    ref = BacktestEngine(cfg, BacktestSpec("XAUUSDc", full), analyse_fn=fn).run()
    assert len(ref.signals) >= 5 or decider == "live"
    cuts = sorted({s.decision_bar for s in ref.signals[::3]} | {1500, 2200})[:6]
    for t in cuts:
        # keep bar t+1 so the order decided at t can fill at its open, nothing later
        cut = BacktestEngine(cfg, BacktestSpec("XAUUSDc", full[: t + 2].copy()), analyse_fn=fn).run()
        assert _decisions(cut.signals, t) == _decisions(ref.signals, t), f"decisions differ up to bar {t}"


def test_session_gate_only_skips_bars_the_analysis_rejects():
    """The engine skips the analysis when the session filter alone fails; the full analysis must agree."""
    from core.backtest.live import LiveParts
    from core.domain.timeframes import Timeframe

    cfg = load_config()
    full = load_candles(XAU, tz_offset_hours=2)[:2500]
    parts = LiveParts(cfg, "XAUUSDc", full, Timeframe.M5)
    gated = checked = 0
    try:
        for i in range(200, len(full) - 1, 2):
            now = float(full["time"][i]) + 300
            parts.advance_to(now)
            if parts.session_open(now):
                continue
            gated += 1
            res = parts.analyse(now)
            assert not res.passed and any(f.name == "session" for f in res.failures), now
            checked += 1
    finally:
        parts.shutdown()
    assert checked == gated and gated > 50


def test_precomputed_higher_timeframes_hand_out_the_same_closed_bars():
    """The backtest feed resamples M15/H1 once; at every bar it must return exactly what the on-demand
    resampling of the live paper feed returns (closed buckets only), including around weekend gaps."""
    from core.analysis.facade import window_sizes
    from core.backtest.live import higher_timeframes
    from core.brokers.paper.feed import ReplayFeed
    from core.domain.timeframes import Timeframe

    tcfg = load_config().for_symbol("XAUUSDc")
    c = load_candles(XAU, tz_offset_hours=2)[:4000]
    pre = higher_timeframes(tcfg, c, Timeframe.M5)
    assert set(pre) > {Timeframe.M5}
    on_demand = ReplayFeed({"X": {Timeframe.M5: c}})
    once = ReplayFeed({"X": pre})
    compared = 0
    for i in range(100, len(c) - 1, 5):
        now = float(c["time"][i]) + 300
        for name, n in window_sizes(tcfg).items():
            tf = Timeframe.parse(name)
            a = on_demand.closed("X", tf, now, n)
            b = once.closed("X", tf, now, n)
            assert len(a) == len(b) and (a == b).all(), (i, name)
            assert len(b) == 0 or b["time"][-1] + tf.seconds <= now  # nothing still forming
            compared += 1
    assert compared > 2000
