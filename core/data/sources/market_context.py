"""The live market context one analysis call reads: order flow per symbol and the news calendar.

Why one hub: the analysis must never wait on the network, yet every source (exchange via ccxt, MT5
tick flags, recorded prints in paper mode, the live calendar) refreshes on its own schedule and fails
in its own ways. The hub owns the background refresh tasks, hands the analysis the latest snapshot
and why there is none, applies the `data_source_unavailable` policy (last known data while younger
than the policy's `max_age_minutes`, then skip), reports each new failure once to the ErrorHandler
(`report`), counts the fallbacks the analyses used, and answers /health without a network call.
"""
from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from core.config.model import AppConfig
from core.config.paths import resolve_path
from core.data.sources.exchange_flow import ExchangeFlowSource, FlowState
from core.data.sources.news import NewsCalendar, NewsCalendarSource
from core.data.sources.news_live import LiveCalendarSource
from core.data.sources.orderflow import OrderFlowSnapshot
from core.data.sources.tick_flow import RecordedFlowSource, TickFlowSource
from core.domain.clock import Clock, SystemClock

log = logging.getLogger(__name__)

# a broker without tick flags has no tick-direction flow, the normal CFD case: /health shows it, cards stay quiet
QUIET = frozenset({"no_flags", "unsupported"})

Reporter = Callable[[str, str, str | None], Any]  # (source, message, symbol)


class MarketContext:
    def __init__(self, cfg: AppConfig, clock: Clock, *, broker: Any = None, paper: bool = False,
                 exchange: Any = None, news_fetch=None, report: Reporter | None = None):
        self.cfg = cfg
        self.clock = clock
        self.paper = paper
        f = cfg.orderflow_feeds
        # only symbols this config trades: a mapping kept for a symbol not configured (ETHUSDc) stays inert
        known = set(cfg.symbols)
        f = f.model_copy(update={"symbols": {k: v for k, v in f.symbols.items() if k in known},
                                 "recorded": {k: v for k, v in f.recorded.items() if k in known},
                                 "mt5_tick_symbols": [s for s in f.mt5_tick_symbols if s in known]})
        self.feeds = f
        on = f.enabled
        # paper replays never call a live exchange: its prints would be from the wrong day
        self.exchange = ExchangeFlowSource(f, clock, exchange) if on and f.symbols and not paper else None
        self.recorded = RecordedFlowSource(f) if on and f.recorded and paper else None
        self.ticks = (TickFlowSource(f, broker, clock) if on and f.mt5_tick_symbols and broker is not None
                      and not paper else None)
        n = cfg.news
        # the recorded calendar file, for /health only (the analysis reads it per symbol in core.analysis.facade);
        # re-read on the wall clock like the facade's, so a replay clock does not re-parse it every call
        self.recorded_news = (NewsCalendarSource(resolve_path(n.calendar_path), n.cache_seconds, SystemClock())
                              if n.enabled and n.calendar_path else None)
        self.news = (LiveCalendarSource(n.live_url, resolve_path(n.live_cache_path), clock, n.live_timeout_seconds,
                                        fetch=news_fetch) if n.enabled and n.live_url and not paper else None)
        self._report = report
        self._reported: dict[str, str | None] = {}
        self.fallbacks: Counter[str] = Counter()
        self.analyses = 0
        self._tasks: list[asyncio.Task] = []

    # -- reads (no network) -------------------------------------------------------------------------
    def flow_state(self, symbol: str) -> tuple[str | None, FlowState | None]:
        """(source label, state) of the feed that serves `symbol`, or (None, None) when none does."""
        if self.recorded is not None and symbol in self.recorded.files:
            return self.recorded.label(symbol), self.recorded.reading(symbol, self.clock.now())
        if self.exchange is not None and symbol in self.exchange.symbols:
            return self.exchange.label(symbol), self.exchange.reading(symbol)
        if self.ticks is not None and symbol in self.ticks.symbols:
            return self.ticks.label(symbol), self.ticks.reading(symbol)
        return None, None

    def flow(self, symbol: str) -> tuple[OrderFlowSnapshot | None, str | None]:
        """The snapshot the analysis may use, and why there is none (or why it is an older one)."""
        label, st = self.flow_state(symbol)
        if st is None or st.kind in QUIET:
            return None, None
        if st.problem is None:
            if st.snapshot is None:  # just started: the first refresh has not finished yet
                return None, f"{label}: no snapshot yet (the first refresh is still running)"
            return st.snapshot, None
        if st.snapshot is not None and st.fetched_at is not None:
            pol = self.cfg.for_symbol(symbol).error_handling.get("data_source_unavailable")
            keep = (pol.max_age_minutes or 0) * 60 if pol is not None and pol.action == "use_last_known_data" else 0
            if self.clock.now() - st.fetched_at <= keep:
                return st.snapshot, f"{label}: {st.problem}; using the last good snapshot"
        return None, f"{label}: {st.problem}"

    def inputs_key(self, symbol: str) -> tuple:
        """What the analysis of `symbol` reads from here, as a cache key part: the order-flow snapshot in use
        (by its source, time and size) and why it is missing or old, and the calendar's. A new snapshot, or a feed that starts
        or stops failing, must give a new analysis, not the one cached earlier in the same bar."""
        snap, why = self.flow(symbol)
        cal, err = self.calendar()
        flow = None if snap is None else (snap.source, snap.timestamp, snap.n_trades, snap.book_imbalance)
        news = None if cal is None else (cal.source, cal.fetched_at, len(cal.events))
        return flow, why, news, err

    def calendar(self) -> tuple[NewsCalendar | None, str | None]:
        """The live calendar (or its disk copy) and its last error; (None, None) when no live source is set."""
        if self.news is None:
            return None, None
        return self.news.get()

    # -- bookkeeping ------------------------------------------------------------------------------------
    def record(self, result: Any) -> None:
        """Count the fallbacks an analysis ran with (for /health), from its data-quality filter."""
        self.analyses += 1
        dq = next((f for f in getattr(result, "filters", []) if f.name == "data_quality"), None)
        for name, rep in (dq.details.items() if dq is not None else []):
            if isinstance(rep, dict) and rep.get("fallback") and not rep.get("available", True):
                self.fallbacks[f"{name}:{rep['fallback']}"] += 1

    def _note(self, key: str, problem: str | None, symbol: str | None) -> None:
        """Tell the ErrorHandler about a *new* failure only: a feed failing every 10 s must not flood the
        error log nor trip the hourly auto-disable; recovery is logged once too."""
        before = self._reported.get(key)
        if problem == before:
            return
        self._reported[key] = problem
        if problem is None:
            log.info("%s recovered", key)
            return
        if self._report is not None:
            try:
                self._report(key, problem, symbol)
            except Exception as e:  # noqa: BLE001 - reporting must never stop the refresh loop
                log.warning("could not report %s: %s", key, e)

    # -- refresh loops ------------------------------------------------------------------------------------
    async def refresh_exchange(self, symbol: str) -> FlowState:
        st = await self.exchange.refresh(symbol)
        self._note(f"orderflow {self.exchange.label(symbol)}", st.problem, symbol)
        return st

    async def refresh_ticks(self, symbol: str) -> FlowState:
        st = await asyncio.to_thread(self.ticks.refresh, symbol)
        self._note(f"orderflow {self.ticks.label(symbol)}", st.problem, symbol)
        return st

    async def refresh_news(self) -> bool:
        ok = await self.news.refresh()
        self._note("news calendar", self.news.last_error, None)
        return ok

    async def _loop(self, name: str, step: Callable[[], Any], every: Callable[[], float]) -> None:
        while True:
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a bug in one refresh must not end the others' loop
                log.exception("%s refresh failed", name)
            await asyncio.sleep(every())

    async def start(self) -> None:
        """Start one background task per live feed (none in paper mode: the recorded prints need none)."""
        if self._tasks:
            return
        if self.exchange is not None:
            for sym in self.exchange.symbols:
                self._tasks.append(asyncio.create_task(self._loop(
                    f"order flow {sym}", lambda s=sym: self.refresh_exchange(s),
                    lambda s=sym: self.exchange.backoff(s)), name=f"orderflow-{sym}"))
        if self.ticks is not None:
            for sym in self.ticks.symbols:
                self._tasks.append(asyncio.create_task(self._loop(
                    f"tick flow {sym}", lambda s=sym: self.refresh_ticks(s),
                    lambda: self.feeds.refresh_seconds), name=f"tickflow-{sym}"))
        if self.news is not None:
            n = self.cfg.news
            self._tasks.append(asyncio.create_task(self._loop(
                "news calendar", self.refresh_news,
                lambda: n.live_refresh_minutes * 60 if self.news.last_error is None else min(
                    n.live_refresh_minutes * 60, 300)), name="news-calendar"))

    async def stop(self, timeout: float = 5.0) -> None:
        """Cancel the refreshes and close the exchange session, bounded: a hung socket must not hang shutdown."""
        for t in self._tasks:
            t.cancel()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=timeout)
            if pending:
                log.warning("%d market-data refresh task(s) did not stop within %g s", len(pending), timeout)
        self._tasks.clear()
        if self.exchange is not None:
            try:
                await asyncio.wait_for(self.exchange.close(), timeout)
            except (TimeoutError, asyncio.TimeoutError):
                log.warning("the exchange session did not close within %g s", timeout)

    # -- /health ----------------------------------------------------------------------------------------
    def status(self) -> dict[str, dict]:
        """Each source: where from, its age in seconds, the problem if any (no network call)."""
        now = self.clock.now()
        out: dict[str, dict] = {}
        for sym in self._flow_symbols():
            label, st = self.flow_state(sym)
            snap = st.snapshot if st is not None else None
            out[f"orderflow {sym}"] = {
                "source": label, "age_seconds": None if snap is None else round(now - snap.timestamp, 1),
                "problem": st.problem if st is not None else None}
        if self.news is not None:
            age = self.news.age_seconds(now)
            out["news calendar"] = {"source": self.news.url, "age_seconds": None if age is None else round(age, 1),
                                    "problem": self.news.last_error}
        if self.recorded_news is not None and (self.news is None or self.news.calendar is None):
            cal = self.recorded_news.get()
            problem = self.recorded_news.last_error
            if cal is not None and problem is None and not cal.covers(now):
                problem = "the recorded calendar does not cover today"
            age = None if cal is None or cal.fetched_at is None else round(max(0.0, now - cal.fetched_at), 1)
            out["news calendar (recorded)"] = {"source": str(self.recorded_news.path.name), "age_seconds": age,
                                               "problem": problem}
        return out

    def problems(self) -> list[str]:
        """Lines for /health: a failing source, or one whose data is past its freshness limit."""
        out = []
        dq = self.cfg.data_quality
        for name, s in self.status().items():
            if self._quiet(name):
                continue
            limit = (dq.news_calendar if name.startswith("news") else dq.orderflow).max_age_minutes * 60
            if s["problem"]:
                out.append(f"{name}: {s['problem']}")
            elif s["age_seconds"] is not None and s["age_seconds"] > limit:
                out.append(f"{name}: {s['age_seconds'] / 60:.0f} minutes old (limit {limit / 60:g})")
        return out

    def _quiet(self, name: str) -> bool:
        """Facts, not faults: a replay outside the recorded prints or calendar, a broker without tick flags."""
        if self.paper and (name.startswith("orderflow") or name == "news calendar (recorded)"):
            return True
        if name.startswith("orderflow"):
            st = self.flow_state(name.split()[-1])[1]
            return st is not None and st.kind in QUIET
        return False

    def _flow_symbols(self) -> list[str]:
        syms: list[str] = []
        for src in (self.recorded and list(self.recorded.files), self.exchange and list(self.exchange.symbols),
                    self.ticks and self.ticks.symbols):
            syms += [s for s in (src or []) if s not in syms]
        return syms
