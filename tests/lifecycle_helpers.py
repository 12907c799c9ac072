"""Shared set-up for the lifecycle tests: a real-data PaperBroker in step mode plus the wired service.

The analysis used here is built from the real candles the broker shows at the replay time (range =
high/low of the recent bars); the trade setups are *found* in the real data (e.g. "a long that
reaches +1 R before its stop"), never invented prices.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from core.app import build_service
from core.brokers.paper.broker import PaperBroker
from core.brokers.paper.feed import ReplayFeed
from core.config.model import AppConfig, deep_merge, load_config, validate_config_dict
from core.data.catalog import MarketData
from core.domain.clock import Clock, FixedClock
from core.domain.models import (
    AnalysisResult,
    CriticalGapZones,
    Direction,
    RangeStructure,
    StrategyScore,
    TouchCount,
)
from core.domain.timeframes import Timeframe
from core.trading.authz import Authorizer

TRADER = 1001
VIEWER = 2002
STRANGER = 3003

_MD: dict[str, MarketData] = {}


async def no_sleep(_s: float) -> None:
    return None


# These tests open several trades on one range to exercise exits, emergencies and recovery; the one-position-
# per-range cap (default 1) is tested on its own in test_execution_range_cap.py with the shipped default.
LIFECYCLE_DEFAULTS = {"execution": {"max_positions_per_range": 100}}


def config(overrides: dict | None = None) -> AppConfig:
    base = load_config()
    raw = deep_merge(deep_merge(base.model_dump(mode="json"), LIFECYCLE_DEFAULTS), overrides or {})
    cfg, issues = validate_config_dict(raw)
    assert cfg is not None, issues
    return cfg


def m5(cfg: AppConfig, symbol: str = "XAUUSDc") -> np.ndarray:
    md = _MD.setdefault("md", MarketData(cfg))
    return md.candles(symbol, Timeframe.M5)


def paper_broker(cfg: AppConfig, db_path, clock: FixedClock, symbols=("XAUUSDc",), slippage_points=None,
                 commission_per_lot=None) -> PaperBroker:
    feed = ReplayFeed({s: {Timeframe.M5: m5(cfg, s)} for s in symbols})
    pc = cfg.broker.paper
    return PaperBroker(
        {s: cfg.symbols[s] for s in symbols}, feed, db_path=db_path, clock=clock,
        slippage_points=pc.slippage_points if slippage_points is None else slippage_points,
        commission_per_lot=pc.commission_per_lot if commission_per_lot is None else commission_per_lot,
        start_balance=pc.start_balance,
    )


def service(cfg: AppConfig, tmp_path, clock: FixedClock, broker=None, analyser=None, store_name="store.sqlite"):
    broker = broker or paper_broker(cfg, tmp_path / "paper.sqlite", clock)
    return build_service(
        cfg, broker=broker, clock=clock, store_path=tmp_path / store_name, analyser=analyser, sleep=no_sleep,
        authorizer=Authorizer([TRADER], [VIEWER]),
    )


def range_of(symbol: str, bars: np.ndarray, atr: float) -> RangeStructure:
    hi, lo = float(bars["high"].max()), float(bars["low"].min())
    w = hi - lo
    z = 0.2 * w
    return RangeStructure(
        symbol=symbol, timeframe="M5", range_type="dynamic", range_high=hi, range_low=lo, range_mid=(hi + lo) / 2,
        range_width_atr=w / atr if atr else 0.0, range_width_pct=w / lo * 100, atr=atr,
        critical_gaps=CriticalGapZones(upper_zone_start=hi - z, upper_zone_end=hi, lower_zone_start=lo,
                                       lower_zone_end=lo + z),
        touch_count=TouchCount(top=2, bottom=2), validated=True, start_time=float(bars["time"][0]),
        end_time=float(bars["time"][-1]),
    )


@dataclass
class Setup:
    index: int  # bar whose open is the entry time
    direction: Direction
    entry: float
    sl: float
    tp: float


def analysis_at(symbol: str, bars: np.ndarray, now: float, setup: Setup, confidence: float = 70.0,
                lookback: int = 48) -> AnalysisResult:
    hist = bars[bars["time"] + 300 <= now][-lookback:]
    atr = float(np.mean(hist["high"] - hist["low"]))
    rng = range_of(symbol, hist, atr)
    risk = abs(setup.entry - setup.sl)
    s = StrategyScore(strategy="bb_fade", direction=setup.direction, entry=setup.entry, stop_loss=setup.sl,
                      take_profit=setup.tp, rr=abs(setup.tp - setup.entry) / risk, score=72.0)
    return AnalysisResult(symbol=symbol, timeframe="M5", as_of=now, range=rng, passed=True, strategies=[s],
                          confidence=confidence, session="london", confluence_score=68.0)


def find_breakeven_then_exit(bars: np.ndarray, start: int, risk: float, tp_r: float = 3.0,
                             spread: float = 0.2, max_bars: int = 40) -> Setup:
    """First bar at/after `start` where a long entered at its open sees a later bar OPEN (the monitor's
    tick) at +1.2 R or more before the stop or TP is touched, and then trades back down through the
    entry (so the breakeven stop, not the TP, ends it) within `max_bars`."""
    for i in range(start, len(bars) - max_bars):
        if bars["time"][i + max_bars] - bars["time"][i] > max_bars * 300:  # no gaps/weekends inside
            continue
        entry = float(bars["open"][i]) + spread
        sl, tp = entry - risk, entry + tp_r * risk
        hit_be = None
        for j in range(i, i + max_bars):
            lo, hi, op = float(bars["low"][j]), float(bars["high"][j]), float(bars["open"][j])
            if hit_be is None:
                if j > i and op >= entry + 1.2 * risk:
                    hit_be = j
                elif lo <= sl or hi >= tp:
                    break
            if hit_be is not None:
                if hi >= tp:
                    break
                if lo <= entry + 0.05 and j > hit_be:
                    return Setup(i, Direction.LONG, entry, sl, tp)
    raise AssertionError("no breakeven-then-exit setup in the data window")


class FlakyBroker:
    """Wraps a real broker; `fail(method, *errors)` makes the next calls raise those errors in turn.

    It also counts calls per method, which is how the tests see "once per symbol" and "sent once".
    """

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", "flaky")
        self.calls: dict[str, int] = {}
        self._faults: dict[str, list] = {}
        self._after: dict[str, list] = {}
        self.down = False  # connection lost: every call raises until `connect()` succeeds
        self.connect_failures = 0

    def fail(self, method: str, *errors) -> None:
        self._faults.setdefault(method, []).extend(errors)

    def fail_after(self, method: str, error) -> None:
        """The next call reaches the broker and THEN raises (a timeout on the way back)."""
        self._after.setdefault(method, []).append(error)

    def connect(self):
        self.calls["connect"] = self.calls.get("connect", 0) + 1
        if self.connect_failures > 0:
            self.connect_failures -= 1
            from core.brokers.base import BrokerConnectionError

            raise BrokerConnectionError("IPC timeout", -10005)
        self.down = False
        return self.inner.connect()

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if not callable(attr) or name.startswith("_") or name in ("step", "advance_to", "now", "is_connected"):
            return attr

        def call(*a, **kw):
            self.calls[name] = self.calls.get(name, 0) + 1
            if self.down:
                from core.brokers.base import BrokerConnectionError

                raise BrokerConnectionError("terminal disconnected", 10031)
            queue = self._faults.get(name)
            if queue:
                raise queue.pop(0)
            result = attr(*a, **kw)
            after = self._after.get(name)
            if after:
                raise after.pop(0)
            return result

        return call


class LiveAnalyser:
    """An analysis priced off the broker's real quote and recent real bars at the replay time."""

    def __init__(self, broker, clock, direction: Direction = Direction.LONG, risk_atr: float = 1.5,
                 confidence: float = 70.0) -> None:
        self.broker, self.clock = broker, clock
        self.direction, self.risk_atr, self.confidence = direction, risk_atr, confidence

    def __call__(self, symbol: str) -> AnalysisResult:
        hist = self.broker.candles(symbol, Timeframe.M5, 48)
        atr = float(np.mean(hist["high"] - hist["low"]))
        tick = self.broker.tick(symbol)
        d = self.direction
        entry = tick.ask if d is Direction.LONG else tick.bid
        risk = self.risk_atr * atr
        setup = Setup(0, d, entry, entry - d.sign * risk, entry + d.sign * 2 * risk)
        rng = range_of(symbol, hist, atr)
        s = StrategyScore(strategy="bb_fade", direction=d, entry=entry, stop_loss=setup.sl, take_profit=setup.tp,
                          rr=2.0, score=70.0)
        return AnalysisResult(symbol=symbol, timeframe="M5", as_of=self.clock.now(), range=rng, passed=True,
                              strategies=[s], confidence=self.confidence, session="london", confluence_score=66.0)


async def open_trades(svc, symbol: str, n: int = 1) -> list[int]:
    tickets = []
    for _ in range(n):
        _, props = await svc.propose(symbol)
        out = await svc.approve(props[0].id, TRADER)
        assert out.ok, out.message
        tickets.append(out.ticket)
    return tickets


class PaperService(NamedTuple):
    svc: Any
    clock: Clock
    inner: PaperBroker


async def paper_service(cfg: AppConfig, tmp_path, at: float | Clock, *, wrap: Callable | None = FlakyBroker,
                        connect: bool = True, direction: Direction = Direction.LONG, risk_atr: float = 1.5,
                        analyser: Callable | None = None, start: bool = True) -> PaperService:
    """The service on a real-data paper broker at one replay time, as most lifecycle tests begin.

    Some thirty tests repeated the same five to seven set-up lines, and the few ways they really differ
    (no connect, another wrapper, another side) were hard to see among the copies; here those
    differences are the arguments. `at` is a real bar
    time (a FixedClock is made for it) or a clock the caller already holds (an AcceleratedClock, or one
    its own analyser reads). `wrap` wraps the broker the service sees (FlakyBroker by default, None for
    the bare paper broker); `inner` is always the paper broker itself, for stepping the replay.
    `analyser` defaults to a LiveAnalyser priced off `inner`. `start=False` leaves the start to a test
    that must register a sink or set faults first.
    """
    clock = at if hasattr(at, "now") else FixedClock(float(at))
    inner = paper_broker(cfg, tmp_path / "paper.sqlite", clock)
    if connect:
        inner.connect()
    if analyser is None:
        analyser = LiveAnalyser(inner, clock, direction, risk_atr=risk_atr)
    svc = service(cfg, tmp_path, clock, broker=wrap(inner) if wrap else inner, analyser=analyser)
    if start:
        await svc.start(monitor=False)
    return PaperService(svc, clock, inner)


def common_time(cfg: AppConfig, symbols=("XAUUSDc", "BTCUSDc"), near: float = 1_746_000_000.0) -> float:
    """A real bar open where every symbol has a bar (their files cover different spans)."""
    arrays = [m5(cfg, s) for s in symbols]
    base = arrays[0]["time"]
    i = int(np.searchsorted(base, near))
    for t in base[i:]:
        if all(np.any(a["time"] == t) for a in arrays[1:]):
            return float(t)
    raise AssertionError("no common bar")


def collect_alerts(svc, channel: str = "telegram") -> list:
    """Register a sink on `channel` that keeps every alert delivered to it (for asserting on pages)."""
    got: list = []

    async def sink(alert) -> None:
        got.append(alert)

    svc.alerts.register_sink(channel, sink)
    return got


async def approve_held_at_broker(svc, proposal_id: str):
    """Start approving `proposal_id` and return once its order is inside the broker call, held there.

    `svc.broker` must have `hooks` (test_review_execution.HookBroker). Returns (approval task, release
    event): the order completes only after `release.set()`, so a test can act while it is in flight."""
    import asyncio
    import threading

    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        entered.set()
        release.wait(10)

    svc.broker.hooks["market_order"] = hold
    approval = asyncio.create_task(svc.approve(proposal_id, TRADER))
    while not entered.is_set():
        await asyncio.sleep(0.005)
    return approval, release
