"""The live components a backtest drives, wired to a step-mode PaperBroker.

This is the one place that knows which live functions a backtest calls, so a reader can check that
nothing here decides anything on its own: analysis is `core.analysis.facade.analyse_range_scalp_opportunity`,
orders go through the live execution path, exits are judged by `core.exits.rules` (the monitor's
rules) and booked by the broker's SL/TP engine, and the journal entry is built by
`core.exits.deals.closed_trade_from_deals`, exactly as the monitor does after a live close.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.backtest.replay_loop import ReplayLoop, inline
from core.brokers.base import BrokerError
from core.brokers.paper.broker import PaperBroker
from core.brokers.paper.feed import ReplayFeed
from core.config.model import AppConfig
from core.data.resample import resample
from core.domain.clock import FixedClock
from core.domain.models import ActiveTrade, AnalysisResult, ClosedTrade, StrategyScore
from core.domain.sessions import session_label
from core.domain.timeframes import Timeframe
from core.exits.executor import ExitExecutor
from core.exits.manager import RangeScalpingExitManager
from core.exits.monitor import Monitor
from core.ops.notify import Notifier
from core.store import Store
from core.trading.execution import ExecutionEngine
from core.trading.order_checks import session_block_now

log = logging.getLogger(__name__)

AUTO_APPROVER = "backtest"
AnalyseFn = Callable[[str, PaperBroker, AppConfig, FixedClock], AnalysisResult]


async def _no_sleep(_seconds: float) -> None:
    """Retry waits cost nothing in a replay (the replay clock does not move during an order)."""


STOP_EXIT_REASONS = frozenset({"stop_loss", "breakeven_stop", "take_profit", "stop_out"})


@dataclass
class ManageAction:
    ticket: int
    kind: str  # "close" | "move_sl"
    reason: str
    new_sl: float | None = None


def higher_timeframes(tcfg, candles: np.ndarray, timeframe: Timeframe) -> dict[Timeframe, np.ndarray]:
    """The primary bars plus the analysis' higher timeframes, resampled ONCE from them.

    Free of look-ahead by construction: a resampled bucket is made only of the primary bars inside it,
    and the feed hands out a bucket only once it has closed (open + length <= now), when all of those
    bars had closed too. It is the same `core.data.resample.resample` the feed would otherwise call
    on every request (one call per analysis per timeframe), so the bars are identical; the parity test
    (a session on a primary-only feed vs this) and the truncation test check it.
    """
    from core.analysis.facade import window_sizes

    out = {timeframe: candles}
    for name in window_sizes(tcfg):
        tf = Timeframe.parse(name)
        if tf.seconds > timeframe.seconds and tf.seconds % timeframe.seconds == 0 and len(candles):
            out[tf] = resample(candles, tf)
    return out


class LiveParts:
    def __init__(self, cfg: AppConfig, symbol: str, candles: np.ndarray, timeframe: Timeframe,
                 analyse_fn: AnalyseFn | None = None) -> None:
        self.cfg = cfg
        self.symbol = symbol
        self.tcfg = cfg.for_symbol(symbol)
        self.spec = cfg.symbols[symbol]
        self.timeframe = timeframe
        self.tf_sec = timeframe.seconds
        self.candles = candles
        start = float(candles["time"][0]) if len(candles) else 0.0
        self.clock = FixedClock(start)
        pc = cfg.broker.paper
        tfs = higher_timeframes(self.tcfg, candles, timeframe)
        self.feed = ReplayFeed({symbol: tfs})
        self.timeframes = list(tfs)
        self.broker = PaperBroker(
            {symbol: self.spec}, self.feed, db_path=":memory:", clock=self.clock,
            slippage_points=pc.slippage_points, commission_per_lot=pc.commission_per_lot,
            start_balance=pc.start_balance,
        )
        self.broker.connect()
        self.starting_balance = float(pc.start_balance)
        # The live lifecycle objects, on an in-memory store (a backtest must not touch the real journal).
        self.store = Store(":memory:", clock=self.clock)
        self.notifier = Notifier(cfg, store=self.store, clock=self.clock)
        self.exits = RangeScalpingExitManager(store=self.store, clock=self.clock)
        self.execution = ExecutionEngine(cfg, self.store, self.broker, self.exits, self.notifier, self.clock,
                                         sleep=_no_sleep, offload=inline)
        self.execution.news_calendar = self._send_calendar
        # broker calls run inline (`inline`), as the replay loop would run them anyway (core.backtest.replay_loop)
        self.exit_executor = ExitExecutor(cfg, self.broker, self.store, self.exits, self.notifier, sleep=_no_sleep,
                                          offload=inline)
        self.monitor = Monitor(cfg, self.broker, self.exits, self.exit_executor, self.notifier, self.clock,
                               sleep=_no_sleep, offload=inline)
        self._closed_since = start - 1.0
        self._seen_closed: set[int] = set()
        # Closes reach `self.store`'s journal only through the exit executor (`Store.record_close`'s one
        # caller), which counts them; the broker's own clock moves write only its paper account. So while
        # that count stands still there is nothing new to collect, and the journal is not read.
        self.closes_seen = -1  # `closes_recorded` at the last read (`collect_closed` answers [] while they agree)
        self._stops_seen = -1  # the exit manager's `stops_version` `_stops_before` was taken at (see `manage`)
        self._stops_before: dict[int, float] = {}
        self._loop = ReplayLoop()
        self._analyse_fn = analyse_fn
        self._news = None  # (calendar, error), once read (`_calendar`)
        self.last_refusal = ""
        self._reentry_memo: dict[tuple[float, float], float] = {}
        self._reentry_version = -1
        self._has_spread = bool(len(candles) and np.any(candles["spread"] > 0))

    def frames(self) -> dict[Timeframe, np.ndarray]:
        """The bars the feed serves per timeframe (what the analysis' windows are cut from)."""
        return {tf: self.feed.bars(self.symbol, tf) for tf in self.timeframes}

    def shutdown(self) -> None:
        self._loop.close()
        self.store.close()
        self.broker.close()

    # ---- clock --------------------------------------------------------------------------------
    def advance_to(self, t: float) -> None:
        if t > self.broker.now():
            self.broker.advance_to(t)

    def has_open(self) -> bool:
        return len(self.exits) > 0

    def costs(self) -> dict[str, float | str]:
        pc = self.cfg.broker.paper
        return {
            "spread": "from data (bar spread column)" if self._has_spread
            else f"config default {self.spec.default_spread_points} points",
            "default_spread_points": float(self.spec.default_spread_points),
            "slippage_points": float(pc.slippage_points),
            "commission_per_lot": float(pc.commission_per_lot),
        }

    # ---- decisions ----------------------------------------------------------------------------
    def analyse(self, now: float) -> AnalysisResult:
        if self._analyse_fn is not None:
            return self._analyse_fn(self.symbol, self.broker, self.cfg, self.clock)
        from core.analysis.facade import analyse_range_scalp_opportunity

        cal, err = self._calendar()
        return analyse_range_scalp_opportunity(self.symbol, self.broker, self.cfg, clock=self.clock,
                                               news=cal, news_error=err)

    def _calendar(self):
        """(calendar, error) of the configured news calendar, read once for the whole replay and used by both
        the analysis and the execution engine's send-time blackout check, so the two judge by the same events.

        Live code asks a shared cached source, which re-reads the file every `cache_seconds` and keeps its
        last good copy; a replay reads the file as it is now, once (~0.3 ms): it does not change during a run,
        and a copy from earlier in the process must not decide a backtest's trades."""
        if self._news is None:
            from core.config.paths import resolve_path
            from core.data.sources.news import NewsCalendarSource

            n = self.tcfg.news
            if not n.enabled or not n.calendar_path:
                self._news = (None, None)
            else:
                src = NewsCalendarSource(str(resolve_path(n.calendar_path)), float("inf"), self.clock)
                self._news = (src.get(), src.last_error)
        return self._news

    def _send_calendar(self, symbol: str):
        """The calendar the execution engine's send-time blackout check uses: the replay's own (`_calendar`)
        instead of a path resolve and a stat of the unchanged file on every order. Another symbol (none
        trades in this replay) is asked as live."""
        if symbol != self.symbol:
            from core.analysis.facade import configured_calendar

            return configured_calendar(self.cfg.for_symbol(symbol))[0]
        return self._calendar()[0]

    def session_open(self, now: float) -> bool:
        """The analysis' own session filter, alone: False means the full analysis is bound to say no.

        It is a blocking filter that depends only on the clock and the config, so skipping the analysis
        when it fails cannot change a decision (tests/test_backtest_lookahead.py checks this on real
        bars). It is the send-time check's verdict (`session_block_now`, the rule `check_session_filters` is
        built on): the filter's context, result model and pass reason cost ~3/4 of it and nothing read them.
        """
        return session_block_now(self.cfg, self.symbol, now) is None

    def reentry_allowed(self, rng, now: float) -> tuple[bool, str]:
        """The live re-entry rule for a range (anything with range_high/range_low), at `now`."""
        ex = self.tcfg.exits
        return self.exits.check_reentry_allowed(
            self.symbol, rng, now, ex.reentry_cooldown_minutes, ex.max_reentries_per_range
        )

    def reentry_open(self, rng, now: float) -> bool:
        """`reentry_allowed(rng, now)[0]`, remembered per range edges while the exit manager's entries stay
        the same: the range screen asks about the same already-traded range on bar after bar. Exact: with
        the entries unchanged, the live rule's answer depends on `now` only through the end of a cooldown
        (`RangeScalpingExitManager.reentry_blocked_until`), and a replay's `now` only moves forward."""
        version = self.exits.entries_version
        if version != self._reentry_version:
            self._reentry_memo.clear()
            self._reentry_version = version
        key = (rng.range_high, rng.range_low)
        until = self._reentry_memo.get(key)
        if until is None:
            ex = self.tcfg.exits
            blocked = self.exits.reentry_blocked_until(self.symbol, rng, now, ex.reentry_cooldown_minutes,
                                                       ex.max_reentries_per_range)
            until = self._reentry_memo[key] = -math.inf if blocked is None else blocked
        return now >= until

    def execute(self, result: AnalysisResult, choice: StrategyScore, now: float) -> ActiveTrade | None:
        """Live path: the chosen strategy's proposal, stored pending, then auto-approved.

        Only that one is created: live offers one proposal per viable strategy because a human picks among
        them, but a replay's approver has already picked, and the others were only created to be rejected
        right after (~0.9 per trade, ~0.2 ms each). Nothing on the way to a trade reads the other pending
        proposals: approval and execution read and move only their own row, the re-entry and per-range caps
        count registered trades and orders in flight (not proposals), and the rejects came after the approval
        anyway; the chosen proposal itself (its analysis, strategy, lot, times) is the same as among all.
        """
        proposals = self.execution.create_proposals(result, only=choice.strategy)  # one (names are unique)
        if not proposals:
            self.last_refusal = "no proposal for the chosen strategy"
            return None
        mine = proposals[0]
        outcome = self._loop.drive(self.execution.approve(mine.id, AUTO_APPROVER, auto=True))
        if not outcome.ok or outcome.ticket is None:
            self.last_refusal = outcome.message
            return None
        return self.exits.get(outcome.ticket)

    def manage(self, now: float) -> list[ManageAction]:
        """One live monitor cycle (`Monitor.run_cycle`): journals broker SL/TP closes, evaluates the exit
        rules CRITICAL → LOW and acts. Returns the stop moves it made, for the signal export.

        The SLs before the cycle are the ones seen after the last cycle while the exit manager's
        `stops_version` stands (it moves with every registration and every update to an SL != the old one,
        and a closed trade's ticket is never in `after`); a cycle that did not move it moved no stop, so
        neither snapshot is built then (most cycles). Same actions as comparing fresh lists each cycle."""
        exits = self.exits
        if exits.stops_version != self._stops_seen:
            self._stops_before = {t.ticket: t.sl for t in exits.active_trades()}
            self._stops_seen = exits.stops_version
        self._loop.drive(self.monitor.run_cycle())
        if exits.stops_version == self._stops_seen:
            return []
        before = self._stops_before
        out = []
        after = exits.active_trades()
        for t in after:
            old = before.get(t.ticket)
            if old is not None and t.sl != old:
                out.append(ManageAction(t.ticket, "move_sl", "breakeven" if t.breakeven_moved else "sl_moved", t.sl))
        self._stops_before = {t.ticket: t.sl for t in after}
        self._stops_seen = exits.stops_version
        return out

    def collect_closed(self) -> list[ClosedTrade]:
        """Trades the live monitor journalled as closed since the last call (from the store)."""
        recorded = self.exit_executor.closes_recorded
        if recorded == self.closes_seen:
            return []
        self.closes_seen = recorded
        rows = self.store.closed.since(self._closed_since, skip=self._seen_closed)
        out = []
        for ct in sorted(rows, key=lambda c: (c.exit_time, c.ticket)):
            self._seen_closed.add(ct.ticket)
            if ct.session == "":
                ct = ct.model_copy(update={"session": session_label(self.tcfg.sessions, ct.entry_time)})
            out.append(ct)
        # Nothing journalled from now on can have exited before this: a trade exits after its entry,
        # and every trade not yet closed is open now or opens later. Re-reading the whole journal on
        # every bar made this quadratic in the number of trades.
        self._closed_since = min([self.clock.now(), *(t.entry_time for t in self.exits.active_trades())])
        return out

    def close_all(self, now: float, reason: str) -> int:
        """Close what is still open at the end through the live exit path; returns how many stayed open."""
        self.advance_to(now)
        self._loop.drive(self.monitor.run_cycle())  # journal SL/TP hits of the last bar first
        for t in self.exits.active_trades():
            self._loop.drive(self._close_end(t, reason))
        return len(self.exits.active_trades())

    async def _close_end(self, trade: ActiveTrade, reason: str) -> None:
        try:
            await self.exit_executor.close(trade, reason, "the backtest period ended")
        except BrokerError as e:
            log.info("end-of-backtest close of %s failed: %s", trade.ticket, e)
