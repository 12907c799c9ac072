"""Backtests through the live code: analysis, approval/execution and exit management on PaperBroker.

Why no separate simulator: a backtest that re-implements entries and exits drifts from what the bot
actually does, and then its numbers describe a different bot. Here the only backtest-specific parts
are (1) the replay clock, moved bar by bar (PaperBroker step mode, which also fills SL/TP inside bars
with spread, slippage and commission), (2) auto-approval of the top-scored (or a named) strategy, and
(3) bookkeeping of the decisions as `Signal`s so a peer backtester can replay them.

Speed without look-ahead: analysis runs only when the symbol is flat and at most once per bar, on the
same trailing windows the live bot cuts (`core.analysis.range.bars.Bars.closed_window` semantics via the
broker's candles), so a decision at bar t is a function of bars closed by t only;
`tests/test_backtest_lookahead.py` checks that by truncating the data. Two shortcuts skip the call on
bars where it cannot lead to a trade: the analysis' own session filter, `core.backtest.prescreen`
(necessary conditions of a pass, computed once per run from trailing windows) and
`core.backtest.range_screen` (no range the analysis could pick is valid, has price at its edge and is
allowed by the live re-entry rule; bars where no candidate is possible at all, re-entry rule or not,
are counted off a per-bar list without a call). The analysis is never fed anything from them; they
only decide whether to call it. `tests/test_backtest_prescreen.py` checks that they leave every decision
unchanged. While flat, the broker is not stepped bar by bar: its clock moves only when the analysis
is about to read it (no position means no SL/TP to fill in between).
"""
from __future__ import annotations

import gc
import logging
import time as _time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.backtest.live import STOP_EXIT_REASONS, AnalyseFn, LiveParts
from core.backtest.prescreen import Screen, build_screen
from core.backtest.range_screen import RangeScreen, build_range_screen
from core.backtest.report import BacktestReport
from core.backtest.signals import Signal, StopMove
from core.config.model import AppConfig
from core.domain.models import ActiveTrade, AnalysisResult, ClosedTrade, StrategyScore
from core.domain.timeframes import Timeframe
from core.store.metrics import compute_metrics

_CHATTY = ("core.ops.notify", "core.exits.monitor", "core.exits.executor", "core.trading.execution", "core.trading.order_send", "core.exits.manager", "core.ops.alerts",
           "core.brokers.paper.broker", "core.brokers.paper.orders", "core.analysis.facade", "core.ops.error_handler")

Progress = Callable[[int, int], None]  # (bars done, bars total)
RUN_GC_GEN0 = 50_000  # the cyclic collector's young-generation threshold during a run (see `run`)


@dataclass
class BacktestSpec:
    symbol: str
    candles: np.ndarray  # primary timeframe, the whole series incl. warm-up history
    timeframe: Timeframe = Timeframe.M5
    start: float | None = None  # first decision bar time (default: after warm-up)
    end: float | None = None  # last decision bar time (inclusive)
    strategy: str = "auto"
    split_time: float | None = None
    extra: dict = field(default_factory=dict)


def _bar_times(c: np.ndarray) -> Sequence:
    """`c["time"].tolist()` as a sequence: for native int64/float64 times, a memoryview of a contiguous copy,
    whose element reads are the very Python ints/floats `tolist()` makes (the bisect in `_bar_of` reads it
    too), without making (and later freeing) one object per bar of the whole history up front."""
    t = c["time"]
    if t.dtype in (np.dtype("<i8"), np.dtype("<f8")) and t.dtype.isnative:
        return memoryview(np.ascontiguousarray(t))
    return t.tolist()


def pick_strategy(result: AnalysisResult, mode: str) -> StrategyScore | None:
    """Auto-approval: the top-scored viable strategy, or the named one if it is viable now."""
    if not result.passed:
        return None
    if mode == "auto":
        return result.top
    for s in result.strategies:
        if s.viable and s.strategy == mode:
            return s
    return None


class BacktestEngine:
    def __init__(self, cfg: AppConfig, spec: BacktestSpec, *, progress: Progress | None = None,
                 warmup_bars: int | None = None, analyse_fn: AnalyseFn | None = None,
                 gate_sessions: bool = True, prescreen: bool = True,
                 decisions: dict[int, tuple[AnalysisResult, StrategyScore]] | None = None) -> None:
        self.cfg = cfg
        self.spec = spec
        self.tcfg = cfg.for_symbol(spec.symbol)
        self.progress = progress
        c = spec.candles
        if len(c) == 0:
            from core.domain.exceptions import UserFacingError

            raise UserFacingError(f"no {spec.timeframe.value} bars for {spec.symbol} in the chosen period")
        tf_sec = spec.timeframe.seconds
        rd = self.tcfg.range_detection
        warm = warmup_bars if warmup_bars is not None else max(rd.lookback_bars, rd.min_candles) + 12 * 3
        times = c["time"]
        first = warm
        if spec.start is not None:
            first = max(first, int(np.searchsorted(times, spec.start, side="left")))
        last = len(c) - 2  # the bar after the last decision bar is where open trades are closed
        if spec.end is not None:
            last = min(last, int(np.searchsorted(times, spec.end, side="right")) - 1)
        self.first, self.last = first, last
        self.tf_sec = tf_sec
        self._analyse_fn = analyse_fn
        self.parts: LiveParts | None = None
        self.signals: list[Signal] = []
        self.closed: list[ClosedTrade] = []
        self._open_signal: dict[int, Signal] = {}  # ticket -> signal
        self.analysis_calls = 0
        self.gated = 0
        self.analysis_seconds = 0.0
        self.gate_sessions = gate_sessions
        self.use_prescreen = prescreen
        self.prescreened = 0
        self.screen: Screen | None = None
        self.ranges: RangeScreen | None = None
        self.range_screened = 0
        self.screen_seconds = 0.0
        self.open_at_end = 0
        self._times: Sequence = []
        # decision bar -> (analysis result, chosen strategy) of every signal this run made. Given in
        # `decisions`, a run replays them instead of analysing: the simulation leg alone (the same
        # PaperBroker, monitor, execution and store code), which is what a trade simulator such as
        # backtesting.py does with the same signals (bench/backtest.py compares the two).
        self.replay = decisions
        self.decisions: dict[int, tuple[AnalysisResult, StrategyScore]] = {}

    # ---- main loop ----------------------------------------------------------------------------
    def run(self) -> BacktestReport:
        """Run the replay. The lifecycle's per-trade log lines and alerts (meant for a live operator) are
        muted to errors for the duration: a 58k-bar run would otherwise print thousands of them."""
        saved = {name: logging.getLogger(name).level for name in _CHATTY}
        for name in _CHATTY:
            logging.getLogger(name).setLevel(logging.ERROR + 10)
        # The ~100k objects alive before the run (modules, config, the bars' owners) are set aside from the
        # cyclic garbage collector for its duration: the run allocates steadily, and each full collection
        # re-scanned all of them (~6 % of a full-pipeline run). Only when collection happens changes:
        # objects are freed as before, and anything frozen is collectable again afterwards.
        # The young generation is also collected less often (every RUN_GC_GEN0 net allocations, not 700):
        # nearly everything a run allocates is freed by reference counting, so those collections found
        # little and cost ~3 % of the simulation leg. Cyclic garbage waits longer, at most that many objects.
        gc.freeze()
        threshold = gc.get_threshold()
        gc.set_threshold(max(threshold[0], RUN_GC_GEN0), *threshold[1:])
        try:
            return self._run()
        finally:
            gc.set_threshold(*threshold)
            gc.unfreeze()
            for name, level in saved.items():
                logging.getLogger(name).setLevel(level)

    def _run(self) -> BacktestReport:
        # Built here, not in __init__: the in-memory store's SQLite connections are per thread, and a
        # chat adapter constructs in its event-loop thread but runs in a worker.
        self.parts = LiveParts(self.cfg, self.spec.symbol, self.spec.candles, self.spec.timeframe,
                               analyse_fn=self._analyse_fn)
        try:
            return self._replay()
        finally:
            # also on a cancelled (chat shutdown) or failed run: the replay loop, the in-memory stores
            # and the paper broker hold an event loop and SQLite connections that would otherwise leak
            self.parts.shutdown()

    def _replay(self) -> BacktestReport:
        c = self.spec.candles
        parts = self.parts
        t_start = _time.perf_counter()
        t_screen = _time.perf_counter()
        if self.use_prescreen and self._analyse_fn is None and self.replay is None:
            self.screen = build_screen(self.cfg, self.spec.symbol, c, self.spec.timeframe)
            if self.screen is not None and self.screen.atr is not None:
                self.ranges = build_range_screen(self.cfg, self.spec.symbol, c, parts.frames(), self.screen.atr,
                                                 self.screen.entries)
        skip = self.screen.skip if self.screen is not None else None
        ruled_out = self.ranges.ruled_out if self.ranges is not None else None
        self.screen_seconds = _time.perf_counter() - t_screen
        times = self._times = _bar_times(c)
        tf_sec = self.tf_sec
        total = max(0, self.last - self.first + 1)
        report_every = max(1, total // 200)
        progress = self.progress
        first, last = self.first, self.last
        replay = self.replay
        # "Something can happen" only on a bar with an open position or, when flat, on a bar the screens
        # leave to the analysis (a replay: a signal bar). The flat bars in between are jumped over and
        # counted off the screens' arrays: the per-bar loop over them did nothing but that count.
        n = len(c)
        sk = np.array(skip, dtype=bool) if skip is not None else np.zeros(n, dtype=bool)  # a copy: zeroed below
        ro = (np.asarray(ruled_out, dtype=bool) & ~sk) if ruled_out is not None else np.zeros(n, dtype=bool)
        if replay is not None:
            todo = sorted(k for k in replay if first <= k <= last)
            sk[:] = False
            ro[:] = False
        else:
            todo = (np.flatnonzero(~(sk | ro)[first:last + 1]) + first).tolist()
        cum_sk = np.concatenate(([0], np.cumsum(sk)))  # read at the jumps only (`.item`: Python ints)
        cum_ro = np.concatenate(([0], np.cumsum(ro)))
        shown = -1
        i = first
        while i <= last:
            now = float(times[i]) + tf_sec  # bar i has just closed
            if parts.has_open():
                parts.advance_to(now)
                self._manage_open(i, now)
            if replay is not None:
                if i in replay and not parts.has_open():
                    self._enter(i, now, *replay[i])
            elif not parts.has_open():
                # Flat: the broker has nothing to fill, so its clock only has to be at `now` when the
                # analysis reads it (a flat step books nothing); bars the pre-screen proves the analysis
                # would reject are not analysed at all.
                if skip is not None and skip[i]:
                    self.prescreened += 1
                elif ruled_out is not None and ruled_out[i]:
                    self.range_screened += 1  # `RangeScreen.could_pass` is False here, whatever the re-entry rule
                else:
                    self._maybe_enter(i, now)
            nxt = i + 1
            if not parts.has_open():
                k = bisect_right(todo, i)
                nxt = todo[k] if k < len(todo) else last + 1
                self.prescreened += cum_sk.item(nxt) - cum_sk.item(i + 1)
                self.range_screened += cum_ro.item(nxt) - cum_ro.item(i + 1)
            if progress and (nxt - 1 - first) // report_every != shown:
                shown = (nxt - 1 - first) // report_every
                progress(nxt - 1 - first, total)  # bars up to nxt-1 are done (the jumped ones had nothing to do)
            i = nxt
        # Close whatever is still open at the end at the last quote, so every trade is journalled.
        end_now = float(times[self.last]) + self.tf_sec
        self.open_at_end = parts.close_all(end_now, reason="end_of_backtest")
        # The closes are read from the journal once, here: nothing in the run reads them before (entries ask
        # the exit manager, a close's signal is only read by the report and the peer comparison), and a read
        # after each close cost a query and a cold parse per trade. The same trades and signals either way
        # (tests/test_close_path_fast_paths.py compares it with a read after every monitor cycle).
        self._sync_closed()
        if self.progress:
            self.progress(total, total)
        secs = _time.perf_counter() - t_start
        return self._report(secs)

    # ---- steps --------------------------------------------------------------------------------
    def _maybe_enter(self, i: int, now: float) -> None:
        parts = self.parts
        if self.ranges is not None:
            t0 = _time.perf_counter()
            ok = self.ranges.could_pass(i, now, lambda r: parts.reentry_open(r, now))
            self.screen_seconds += _time.perf_counter() - t0
            if not ok:
                self.range_screened += 1
                return
        # after the range screen, which rules out most bars: this check then runs on the few left
        if self.gate_sessions and not parts.session_open(now):
            self.gated += 1
            return
        parts.advance_to(now)
        self.analysis_calls += 1
        t0 = _time.perf_counter()
        result = parts.analyse(now)
        self.analysis_seconds += _time.perf_counter() - t0
        choice = pick_strategy(result, self.spec.strategy)
        if choice is None:
            return
        self._enter(i, now, result, choice)

    def _enter(self, i: int, now: float, result: AnalysisResult, choice: StrategyScore) -> None:
        parts = self.parts
        parts.advance_to(now)
        allowed, _why = parts.reentry_allowed(result.range, now)
        if not allowed:
            return
        sig = Signal(
            id=len(self.signals) + 1, symbol=self.spec.symbol, strategy=choice.strategy,
            side="buy" if choice.direction.sign > 0 else "sell", decision_bar=i, decision_time=now,
            requested_entry=choice.entry, sl=choice.stop_loss, tp=choice.take_profit,
            volume=self.tcfg.execution.lot_size, score=choice.score,
        )
        self.decisions[i] = (result, choice)
        trade = parts.execute(result, choice, now)
        self.signals.append(sig)
        if trade is None:
            sig.exit_reason = parts.last_refusal or "refused"
            return
        sig.ticket = trade.ticket
        sig.entry_time = trade.entry_time
        sig.entry_price = trade.entry_price
        sig.entry_bar = self._bar_of(trade.entry_time)
        # the executed SL/TP may be adjusted to the stops level: the peer must get what the broker got
        sig.sl, sig.tp = trade.sl, trade.tp
        self._open_signal[trade.ticket] = sig

    def _manage_open(self, i: int, now: float) -> None:
        for action in self.parts.manage(now):
            sig = self._open_signal.get(action.ticket)
            if sig is None:
                continue
            if action.kind == "move_sl":
                sig.stop_moves.append(StopMove(bar=i, time=now, new_sl=action.new_sl, reason=action.reason))
            elif action.kind == "close":
                sig.close_request_bar = i

    def _sync_closed(self) -> None:
        for ct in self.parts.collect_closed():
            self.closed.append(ct)
            sig = self._open_signal.pop(ct.ticket, None)
            if sig is not None:
                sig.exit_time = ct.exit_time
                sig.exit_price = ct.exit_price
                sig.exit_reason = ct.exit_reason
                sig.exit_bar = self._exit_bar(ct)
                if ct.exit_reason not in STOP_EXIT_REASONS and sig.close_request_bar is None:
                    # a client close fills in the bar after the one the monitor decided on
                    sig.close_request_bar = sig.exit_bar - 1

    def _bar_of(self, t: float) -> int:
        """Index of the bar whose period contains time t (fills happen inside the forming bar)."""
        # bisect on the run's bar times (a memoryview): numpy would copy the strided time column on every call
        return bisect_right(self._times, t) - 1

    def _exit_bar(self, ct: ClosedTrade) -> int:
        """SL/TP exits are stamped at the close of the bar that hit them; client closes fill in the forming bar."""
        if ct.exit_reason in STOP_EXIT_REASONS:
            return self._bar_of(ct.exit_time - self.tf_sec)
        return self._bar_of(ct.exit_time)

    def _report(self, secs: float) -> BacktestReport:
        c = self.spec.candles
        start = float(c["time"][self.first]) if self.first < len(c) else 0.0
        end = float(c["time"][self.last]) + self.tf_sec if len(c) else 0.0
        balance = self.parts.starting_balance
        metrics = compute_metrics(self.closed, starting_balance=balance, split_time=self.spec.split_time)
        final = metrics.equity[-1] if metrics.equity else balance
        return BacktestReport(
            symbol=self.spec.symbol, timeframe=self.spec.timeframe.value, bars=max(0, self.last - self.first + 1),
            start=start, end=end, strategy_mode=self.spec.strategy, config_version=self.cfg.short_version,
            costs=self.parts.costs(), starting_balance=balance, final_balance=float(final), metrics=metrics,
            trades=sorted(self.closed, key=lambda t: (t.exit_time, t.ticket)), signals=self.signals,
            seconds=secs, analysis_calls=self.analysis_calls, analysis_seconds=self.analysis_seconds,
            prescreened=self.prescreened + self.range_screened, session_gated=self.gated,
            screen_seconds=self.screen_seconds,
            open_at_end=self.open_at_end,
        )


def open_trades_of(parts: LiveParts) -> list[ActiveTrade]:
    return parts.exits.active_trades()
