"""Exit rules on real XAUUSD M5 bars: range invalidation (N closes outside, per symbol), breakeven
stop, early-exit signals with priorities, MFE/MAE in R."""
from __future__ import annotations

import lifecycle_helpers as k
import numpy as np
import pytest

from core.brokers.base import Tick
from core.domain.models import ActiveTrade, Direction, ExitPriority
from core.exits.rules import (
    calculate_breakeven_stop,
    check_early_exit_conditions,
    check_range_invalidation_during_trade,
    excursions_r,
)

TF = 300


@pytest.fixture(scope="module")
def cfg():
    return k.config()


@pytest.fixture(scope="module")
def bars(cfg):
    return k.m5(cfg, "XAUUSDc")


def _breakout(bars, n_outside: int, start=20000, lookback=48):
    """A real moment: range = last `lookback` bars; then exactly `n_outside` consecutive closes above it."""
    for i in range(start, len(bars) - 10):
        hist = bars[i - lookback:i]
        hi = hist["high"].max()
        nxt = bars["close"][i:i + n_outside + 1]
        if np.all(nxt[:n_outside] > hi + 0.5) and nxt[n_outside] <= hi:
            return i, k.range_of("XAUUSDc", hist, float(np.mean(hist["high"] - hist["low"])))
    raise AssertionError("no breakout found")


def _trade(rng, entry_time, entry=None, direction=Direction.LONG, risk=3.0, **kw) -> ActiveTrade:
    entry = entry if entry is not None else rng.range_low + 1.0
    sign = direction.sign
    base = dict(ticket=1, symbol="XAUUSDc", strategy="bb_fade", direction=direction, entry_price=entry,
                sl=entry - sign * risk, tp=entry + sign * 2 * risk, initial_sl=entry - sign * risk, volume=0.01,
                entry_time=entry_time, range_data=rng)
    base.update(kw)
    return ActiveTrade(**base)


def test_invalidation_needs_n_consecutive_closes_outside(bars, cfg):
    i, rng = _breakout(bars, 2)
    trade = _trade(rng, float(bars["time"][i - 1]))
    buf = cfg.range_invalidation.outside_buffer_atr
    one = bars[: i + 1]  # only the first close outside so far
    assert not check_range_invalidation_during_trade(trade, one, 2, buf, TF)[0]
    two = bars[: i + 2]
    bad, reasons = check_range_invalidation_during_trade(trade, two, 2, buf, TF)
    assert bad and "2 M5 candles in a row closed above the range high" in reasons[0]
    # closes before the entry do not count
    late = _trade(rng, float(bars["time"][i + 1]) + 1)
    assert not check_range_invalidation_during_trade(late, two, 2, buf, TF)[0]


def test_candles_outside_range_is_per_symbol(bars, cfg):
    i, rng = _breakout(bars, 2)
    trade = _trade(rng, float(bars["time"][i - 1]))
    two = bars[: i + 2]
    tick = Tick(time=float(bars["time"][i + 2]), bid=float(bars["open"][i + 2]), ask=float(bars["open"][i + 2]) + 0.2)
    xau = check_early_exit_conditions(trade, tick, two, tick.time, cfg.for_symbol("XAUUSDc"), 0.01, 2, 20, TF)
    btc_cfg = cfg.for_symbol("BTCUSDc")
    assert btc_cfg.range_invalidation.candles_outside_range == 3
    btc = check_early_exit_conditions(trade, tick, two, tick.time, btc_cfg, 0.01, 2, 20, TF)
    assert xau[0].kind == "range_invalidated" and xau[0].priority is ExitPriority.CRITICAL
    assert all(s.kind != "range_invalidated" for s in btc)


def test_breakeven_stop_after_trigger_plus_costs():
    t = ActiveTrade(
        ticket=1, symbol="X", strategy="s", direction=Direction.LONG, entry_price=100.0, sl=97.0, tp=106.0,
        initial_sl=97.0, volume=0.01, entry_time=0.0)
    assert calculate_breakeven_stop(t, Tick(time=1, bid=102.9, ask=103.0), 0.01, 1.0) is None  # 0.97 R
    assert calculate_breakeven_stop(t, Tick(time=1, bid=103.0, ask=103.1), 0.01, 1.0, cost_points=15) == 100.15
    # too close to the price for the broker's stops level: wait for the next cycle
    assert calculate_breakeven_stop(t, Tick(time=1, bid=103.0, ask=103.1), 0.01, 1.0, 0, stops_level_points=400) is None
    moved = t.model_copy(update={"sl": 100.0})
    assert calculate_breakeven_stop(moved, Tick(time=1, bid=105, ask=105.1), 0.01, 1.0) is None
    short = t.model_copy(update={"direction": Direction.SHORT, "sl": 103.0, "initial_sl": 103.0, "tp": 94.0})
    assert calculate_breakeven_stop(short, Tick(time=1, bid=96.9, ask=97.0), 0.01, 1.0, cost_points=10) == 99.9


def test_time_and_stall_exits_have_their_priorities(bars, cfg):
    i, rng = _breakout(bars, 2)
    entry_t = float(bars["time"][i - 30])
    trade = _trade(rng, entry_t, entry=float(bars["open"][i - 30]) + 0.2)
    tcfg = cfg.for_symbol("XAUUSDc")
    calm = bars[: i - 1]
    px = float(trade.entry_price) + 0.1
    tick = Tick(time=0, bid=px, ask=px + 0.2)
    now = entry_t + tcfg.exits.max_minutes_in_trade * 60 + 1
    sigs = check_early_exit_conditions(trade, tick, calm, now, tcfg, 0.01, 2, 20, TF)
    kinds = [(s.kind, s.priority) for s in sigs]
    assert ("max_time_in_trade", ExitPriority.HIGH) in kinds and ("stalled", ExitPriority.MEDIUM) in kinds
    assert [s.priority.rank for s in sigs] == sorted(s.priority.rank for s in sigs)
    assert "minutes" in sigs[0].reason
    early = check_early_exit_conditions(trade, tick, calm, entry_t + 600, tcfg, 0.01, 2, 20, TF)
    assert early == []


def test_mfe_mae_in_r_from_bars_and_tick(bars):
    i = 30000
    entry = float(bars["open"][i]) + 0.2
    t = ActiveTrade(ticket=1, symbol="XAUUSDc", strategy="s", direction=Direction.LONG, entry_price=entry,
                    sl=entry - 3, tp=entry + 6, initial_sl=entry - 3, volume=0.01, entry_time=float(bars["time"][i]))
    seen = bars[i:i + 6]
    tick = Tick(time=0, bid=float(bars["open"][i + 6]), ask=float(bars["open"][i + 6]) + 0.2)
    mfe, mae = excursions_r(t, tick, seen)
    assert mfe == pytest.approx(max((seen["high"].max() - entry) / 3, (tick.bid - entry) / 3, 0))
    assert mae == pytest.approx(min((seen["low"].min() - entry) / 3, (tick.bid - entry) / 3, 0))
    # excursions only ever widen
    t2 = t.model_copy(update={"mfe_r": 5.0, "mae_r": -2.0})
    assert excursions_r(t2, tick, seen) == (5.0, -2.0)
