"""The monitor cycle's shortcuts decide as the general path, on real bars and at the edges:

- `check_early_exit_conditions` judges the breakeven from the exit price and R it has already worked out;
  its stop equals `calculate_breakeven_stop` for the same trade and tick (zero and NaN risk, NaN quotes,
  a stop already moved, stops levels, long and short);
- `Monitor._evaluate` hands back what the rules give trade by trade, ordered by the manager (no signal:
  an empty list), with several trades on two symbols, a symbol without a view, no bars, a NaN quote and
  a market closed over the weekend.
"""
from __future__ import annotations

import math

import lifecycle_helpers as k
import numpy as np
import pytest

from core.brokers.base import SymbolInfo, Tick
from core.data.candles import CANDLE_DTYPE
from core.domain.clock import FixedClock
from core.domain.models import ActiveTrade, Direction
from core.domain.timeframes import Timeframe
from core.exits.cycle_report import CycleReport
from core.exits.manager import RangeScalpingExitManager
from core.exits.market_views import MarketView
from core.exits.monitor import EXCURSION_STEP_R, Monitor
from core.exits.rules import (
    bars_since_entry,
    calculate_breakeven_stop,
    check_early_exit_conditions,
    excursions_r,
)

TF = 300
NAN = float("nan")


@pytest.fixture(scope="module")
def cfg():
    return k.config()


@pytest.fixture(scope="module")
def bars(cfg):
    return k.m5(cfg, "XAUUSDc")


def _trade(ticket, entry, risk, direction, entry_time, rd, **kw) -> ActiveTrade:
    sign = direction.sign
    base = dict(ticket=ticket, symbol="XAUUSDc", strategy="s", direction=direction, entry_price=entry,
                sl=entry - sign * risk, tp=entry + sign * 3 * risk, initial_sl=entry - sign * risk, volume=0.01,
                entry_time=entry_time, range_data=rd)
    base.update(kw)
    return ActiveTrade(**base)


def _moments(bars, n=80):
    """(trade, window, tick) at real moments: both directions, risks from tiny to wide, stops moved or not."""
    rng = np.random.default_rng(11)
    for i in rng.integers(200, len(bars) - 200, n).tolist():
        hist = bars[i - 48:i]
        atr = float(np.mean(hist["high"] - hist["low"]))
        rd = k.range_of("XAUUSDc", hist, atr)
        window = bars[i - 60:i + 4]
        last = float(window["time"][-1]) + TF
        px = float(window["close"][-1])
        for direction in (Direction.LONG, Direction.SHORT):
            for risk in (atr * 0.05, atr * 0.5, atr * 2):
                entry = float(bars["open"][i])
                for extra in ({}, {"breakeven_moved": True}, {"sl": 0.0}, {"sl": entry}):
                    yield (_trade(i, entry, float(risk), direction, float(bars["time"][i]), rd, **extra), window,
                           Tick(time=last, bid=px, ask=px + 0.2))


def _with_trigger(tcfg, trigger, cost):
    return tcfg.model_copy(update={"exits": tcfg.exits.model_copy(
        update={"breakeven_trigger_r": trigger, "breakeven_cost_points": cost})})


def _breakeven_of(sigs):
    out = [s for s in sigs if s.kind == "breakeven"]
    assert len(out) <= 1
    return out[0].new_sl if out else None


def test_the_rules_breakeven_is_calculate_breakeven_stop(cfg, bars):
    tcfg = cfg.for_symbol("XAUUSDc")
    edge = bars[1000:1064]
    t_edge = float(edge["time"][-1]) + TF
    rd = k.range_of("XAUUSDc", edge[:48], 2.0)
    e = float(edge["close"][-1])
    odd = [  # zero risk, NaN risk, NaN entry, NaN quotes, a quote far in profit with a huge stops level
        (_trade(1, e, 0.0, Direction.LONG, t_edge - TF, rd), edge, Tick(time=t_edge, bid=e + 5, ask=e + 5.2)),
        (_trade(2, e, 1.0, Direction.LONG, t_edge - TF, rd, initial_sl=NAN), edge, Tick(time=t_edge, bid=e + 5,
                                                                                           ask=e + 5.2)),
        (_trade(3, e, 1.0, Direction.SHORT, t_edge - TF, rd, entry_price=NAN), edge, Tick(time=t_edge, bid=e,
                                                                                             ask=e)),
        (_trade(4, e, 1.0, Direction.LONG, t_edge - TF, rd), edge, Tick(time=t_edge, bid=NAN, ask=NAN)),
        (_trade(5, e, 1.0, Direction.SHORT, t_edge - TF, rd), edge, Tick(time=t_edge, bid=e - 9, ask=e - 8.8)),
    ]
    seen = moves = 0
    for trade, window, tick in [*_moments(bars), *odd]:
        for trigger, cost in ((1.0, 0.0), (0.3, 15.0), (0.0, 5.0)):
            tc = _with_trigger(tcfg, trigger, cost)
            for stops in (0, 10, 10_000):
                sigs = check_early_exit_conditions(trade, tick, window, tick.time, tc, 0.01, 2, stops, TF)
                want = None if trade.breakeven_moved else calculate_breakeven_stop(trade, tick, 0.01, trigger, cost,
                                                                                  stops, 2)
                got = _breakeven_of(sigs)
                assert got == want or (got is not None and want is not None and math.isnan(got) and math.isnan(want))
                seen += 1
                moves += want is not None
    assert seen > 5000 and moves > 500  # both answers occur


class _Exec:
    def closing(self, ticket):
        return ticket == 13


class _Notify:
    def emergency_on(self):
        return None


def _general(monitor, trades, views, now):
    """The plain computation: each trade judged by the rules searching their own bars, then ordered."""
    sigs = []
    for t in trades:
        v = views.get(t.symbol)
        if v is None:
            continue
        mfe, mae = excursions_r(t, v.tick, bars_since_entry(t, v.candles, v.timeframe.seconds))
        if mfe - t.mfe_r >= EXCURSION_STEP_R or t.mae_r - mae >= EXCURSION_STEP_R:
            t = t.model_copy(update={"mfe_r": mfe, "mae_r": mae})
        if t.ticket == 13:
            continue
        sigs += check_early_exit_conditions(t, v.tick, v.candles, now, monitor.cfg.for_symbol(t.symbol),
                                            v.info.point, v.info.digits, v.info.trade_stops_level,
                                            v.timeframe.seconds)
    return monitor.exits.order_signals(sigs)


def test_evaluate_is_the_rules_trade_by_trade(cfg, bars):
    info = SymbolInfo(name="XAUUSDc", digits=2, point=0.01, trade_stops_level=10)
    rng = np.random.default_rng(5)
    n = signals = quiet = 0
    for i in rng.integers(300, len(bars) - 300, 40).tolist():
        window = bars[i - 64:i]
        hist = bars[i - 112:i - 64]
        atr = float(np.mean(hist["high"] - hist["low"]))
        rd = k.range_of("XAUUSDc", hist, atr)
        last = float(window["time"][-1]) + TF
        px = float(window["close"][-1])
        trades = [_trade(10 + j, float(window["open"][-1 - back]), atr * r, d, float(window["time"][-1 - back]), rd)
                  for j, (back, r, d) in enumerate([(0, 0.3, Direction.LONG), (3, 1.0, Direction.SHORT),
                                                    (8, 0.2, Direction.SHORT), (20, 2.0, Direction.LONG)])]
        trades.append(_trade(20, px, 1.0, Direction.LONG, last, rd, symbol="BTCUSDc"))  # no view for it
        for tick, candles, now in (
            (Tick(time=last, bid=px, ask=px + 0.2), window, last),  # open market
            (Tick(time=last, bid=px, ask=px + 0.2), window, last + 2 * 86400.0),  # closed over a weekend
            (Tick(time=last, bid=px, ask=px + 0.2), np.zeros(0, dtype=CANDLE_DTYPE), last),  # no bars
            (Tick(time=last, bid=NAN, ask=NAN), window, last + 3600.0),  # NaN quote
        ):
            ex = RangeScalpingExitManager(clock=FixedClock(now))
            for t in trades:
                ex.register_trade(t)
            monitor = Monitor(cfg, None, ex, _Exec(), _Notify(), FixedClock(now))
            views = {"XAUUSDc": MarketView(tick, candles, info, Timeframe.parse("M5"), now)}
            want = _general(monitor, trades, views, now)
            rep = CycleReport(started=now)
            got = monitor._evaluate(trades, views, rep)
            assert [s.model_dump() for s in got] == [s.model_dump() for s in want]
            assert rep.signals is got and type(got) is list and not rep.errors
            n += 1
            signals += len(got)
            quiet += not got
    assert n == 160 and signals > 50 and quiet > 0
