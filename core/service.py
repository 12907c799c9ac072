"""TradingService: the one facade the chat front ends call (contract in docs/architecture.md).

It owns the start-up order (recovery before the monitor, the monitor before commands), checks every
state-changing request against the allowlist in core (`core.trading.authz`), and keeps blocking broker calls
off the event loop. Returned values are pydantic models so each adapter can render them its own way.
The trader's controls on open trades (/close, pause/resume, the emergency stop) are `core.trading.controls`.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable

from pydantic import BaseModel

from core.analysis.cache import SingleFlightCache, analysis_key
from core.brokers.base import BrokerError
from core.config.settings import mask_secrets_in
from core.domain.exceptions import ProposalError
from core.domain.models import (
    ActiveTrade,
    AnalysisResult,
    ClosedTrade,
    RecoveryReport,
    TradeProposal,
)
from core.exits.executor import ExitExecutor
from core.exits.manager import RangeScalpingExitManager
from core.exits.monitor import Monitor
from core.exits.rules import market_minutes
from core.ops.health import ChatLink, HealthReport, health_report, trading_blocked
from core.ops.notify import Notifier
from core.store.metrics import MetricsReport, compute_metrics
from core.trading.authz import Authorizer
from core.trading.controls import TradeControls
from core.trading.execution import ExecutionEngine
from core.trading.live_quote import LiveQuote, fetch_live_quote
from core.trading.proposal_outcome import ProposalOutcome
from core.trading.recovery import Reconciler

log = logging.getLogger(__name__)


Analyser = Callable[[str], AnalysisResult]


class TradeStatus(BaseModel):
    trade: ActiveTrade
    current_price: float | None = None
    pnl_r: float | None = None
    pnl: float | None = None
    minutes_in_trade: float = 0.0
    breakeven_moved: bool = False
    state: str = "active"


class TradingService(TradeControls):
    """The facade every front end calls. It is handed its collaborators by `core.app` (the one
    composition root) and builds nothing itself."""

    def __init__(self, cfg, store, broker, *, clock, authorizer: Authorizer, alerts, errors, killswitch,
                 notifier: Notifier, exits: RangeScalpingExitManager, execution: ExecutionEngine,
                 executor: ExitExecutor, monitor: Monitor, reconciler: Reconciler,
                 analyser: Analyser | None = None, market=None) -> None:
        self.cfg = cfg
        self.store = store
        self.broker = broker
        self.clock = clock
        self.authz = authorizer
        self.alerts = alerts
        self.errors = errors
        self.killswitch = killswitch
        self.notifier = notifier
        self.exits = exits
        self.execution = execution
        self.executor = executor
        self.monitor = monitor
        self.reconciler = reconciler
        self._analyser = analyser
        self.market = market  # core.data.sources.market_context.MarketContext: order flow, live news (or None)
        self.analysis_cache: SingleFlightCache[AnalysisResult] = SingleFlightCache(max_entries=64)
        self.chat_links: dict[str, ChatLink] = {}  # see set_chat_link
        self.ready = False
        self.stopping = False  # stop() began: a late command (a Discord tap while alerts drain) is told so

    @property
    def recovery(self) -> RecoveryReport | None:
        """The last reconciliation's report (start-up, or the monitor's re-run)."""
        return self.reconciler.report

    # ---- lifecycle ----------------------------------------------------------------------------
    async def start(self, *, monitor: bool = True) -> RecoveryReport:
        """Recovery (store → broker reconcile → orphans), then the monitor task; only then `ready`."""
        if self.alerts is not None and hasattr(self.alerts, "attach"):
            self.alerts.attach(asyncio.get_running_loop())
            # what the last run logged but no chat answered before it died (the chats register first)
            replayed = self.alerts.replay_undelivered() if hasattr(self.alerts, "replay_undelivered") else 0
            if replayed:
                log.warning("re-sent %d alert(s) a crash left undelivered", replayed)
        self.stopping = False
        await self.reconciler.run()
        self._warn_if_trading_blocked()
        self.monitor.reconcile_pending = not self.recovery.broker_ok
        if monitor:
            self.monitor.start()
        if self.market is not None:
            await self.market.start()  # background refreshes only: no network call is awaited here
        self.ready = True
        return self.recovery

    def _warn_if_trading_blocked(self) -> None:
        """Once at start-up, to every chat: the broker will refuse orders (MT5: Algo Trading off), with
        the fix. Not a reason to stop: analysis and monitoring still work, and the SL/TP already at the
        broker still protect open trades; only our own opens and closes are refused."""
        block = trading_blocked(self.broker)
        if block:
            self.notifier.alert("trading_blocked", "high", "Orders will be refused",
                                f"{block}. Analysis and monitoring carry on, but MoneyBot can neither open nor close "
                                "trades until this is fixed (SL/TP already at the broker still work).",
                                dedup_key="trading_blocked")

    async def stop(self, alert_drain_seconds: float = 10.0) -> None:
        """Stop the monitor, then deliver the alerts still queued (bounded: a dead sink must not hang exit)."""
        self.ready, self.stopping = False, True
        await self.monitor.stop()
        if self.market is not None:
            await self.market.stop()
        if self.alerts is not None and hasattr(self.alerts, "close"):
            try:
                await asyncio.wait_for(self.alerts.close(), alert_drain_seconds)
            except (TimeoutError, Exception):  # noqa: BLE001 - shutting down anyway
                log.warning("some alerts could not be delivered before shutdown")

    def _require_ready(self) -> None:
        if self.stopping:
            raise ProposalError("I'm shutting down: no new trades or closes now.")
        if not self.ready:
            raise ProposalError("I'm still starting up (reconciling open trades with the broker); try again in a moment.")

    def on_tick(self, symbol: str | None = None) -> None:
        """A price feed with push updates calls this: the monitor runs a cycle now (tick-driven mode)."""
        self.monitor.wake()

    def range_scalp_tickets(self) -> frozenset[int]:
        return self.exits.range_scalp_tickets()

    # ---- authorization ---------------------------------------------------------------------------
    def authorize(self, user_id, action: str):
        return self.authz.check(user_id, action)

    # ---- analysis & proposals ------------------------------------------------------------------------
    def resolve_symbol(self, symbol: str) -> str:
        if isinstance(symbol, str) and any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in symbol):
            # refused before matching: "Did you mean XAUUSDc?" for 'XAU\x00USDc' invites pasting garbage again
            raise ProposalError("A symbol cannot contain control characters (such as NUL); type it again, "
                                "e.g. XAUUSDc.")
        name = self.cfg.resolve_symbol(symbol or "")
        if name is None:
            raise self.cfg.unknown_symbol(symbol or "")
        return name

    async def analyse(self, symbol: str) -> AnalysisResult:
        sym = self.resolve_symbol(symbol)
        if self._analyser is None:
            raise ProposalError("Analysis is not available in this process.")
        if getattr(self._analyser, "cacheable", False):  # the broker-fed analyser: one run per closed bar
            try:
                tick = await asyncio.to_thread(self.broker.tick, sym)
            except BrokerError:
                tick = None
            key = analysis_key(self.cfg, sym, self.clock.now(), tick)
            if self.market is not None:  # order flow and the live calendar are inputs too
                key += self.market.inputs_key(sym)
            return await self.analysis_cache.get(key, lambda: self._run_analyser(sym))
        return await self._run_analyser(sym)

    async def _run_analyser(self, sym: str) -> AnalysisResult:
        res = self._analyser(sym)
        if inspect.isawaitable(res):
            return await res
        return res

    async def live_quote(self, analysis: AnalysisResult) -> LiveQuote | None:
        """The quote, price check and analysis age for one card (fresh each time; the analysis may be shared)."""
        return await fetch_live_quote(self.broker, self.cfg, self.clock, analysis)

    async def assess(self, symbol: str) -> AnalysisResult:
        """The analysis as this account may act on it: the re-entry rule applied, so a viewer's card gives
        the same verdict as the trader's (`analyse` alone stays a pure market read for the CLI and tests)."""
        return await self.execution.with_account_rules(self.execution.with_reentry_rule(await self.analyse(symbol)))

    async def propose(self, symbol: str, user_id=None) -> tuple[AnalysisResult, list[TradeProposal]]:
        """Analyse and store one pending proposal per viable strategy (auto-executes when configured).

        With `user_id` the caller must be a trader (proposals can auto-execute); the chat layer checks
        `authorize(user, "propose")` before calling without it."""
        if user_id is not None:
            self.authz.check(user_id, "propose")
        self._require_ready()
        analysis = await self.assess(symbol)
        proposals = self.execution.create_proposals(analysis)
        auto = self.execution.auto_execute_candidate(analysis, proposals)
        if auto is not None:
            await self.execution.approve(auto.id, "auto", auto=True)
            proposals = [self.store.proposals.get(p.id) for p in proposals]
        return analysis, proposals

    async def propose_strategy(self, symbol: str, strategy: str) -> tuple[AnalysisResult, TradeProposal]:
        """An agent's proposal (the MCP front end): ONE strategy, stored pending and never auto-executed
        whatever the auto-execute setting, so only a human tap on its card can place it. The caller (the
        MCP layer) has checked the token's trader role; the store's state machine does the rest."""
        self._require_ready()
        analysis = await self.assess(symbol)
        chosen = [s for s in analysis.strategies if s.viable and s.strategy == strategy]
        if not analysis.passed or not chosen:
            why = "; ".join(f.reason for f in analysis.failures) or (
                analysis.no_range.message if analysis.no_range else f"{strategy} is not viable now")
            raise ProposalError(f"No {strategy} proposal on {analysis.symbol} now: {why}")
        proposals = self.execution.create_proposals(analysis.model_copy(update={"strategies": chosen[:1]}))
        if not proposals:
            raise ProposalError(f"No {strategy} proposal on {analysis.symbol} now.")
        return analysis, proposals[0]

    def proposal(self, proposal_id: str) -> TradeProposal | None:
        return self.store.proposals.get(str(proposal_id))

    async def approve(self, proposal_id: str, user_id) -> ProposalOutcome:
        self.authz.check(user_id, "approve")
        self._require_ready()
        out = await self.execution.approve(str(proposal_id), user_id)
        if out.ok:
            self.monitor.wake()
        return out

    async def reject(self, proposal_id: str, user_id) -> ProposalOutcome:
        self.authz.check(user_id, "reject")
        return self.execution.reject(str(proposal_id), user_id)

    # ---- trades -----------------------------------------------------------------------------------
    def _minutes_in_trade(self, t: ActiveTrade, now: float) -> float:
        """The minutes the exit timers count (market open; a weekend is not time in trade), from the bars
        and quote the monitor's last cycle fetched; clock minutes until a cycle has seen the symbol."""
        view = self.monitor.views.last(t.symbol)
        if view is None:
            return max(now - t.entry_time, 0.0) / 60.0
        return market_minutes(t, view.candles, view.tick.time, now, view.timeframe.seconds)

    def status(self) -> list[TradeStatus]:
        now = self.clock.now()
        out = []
        for t in sorted(self.exits.active_trades(), key=lambda x: x.entry_time):
            q = self.monitor.last_quote(t.symbol)
            price = (q.bid if t.direction.sign > 0 else q.ask) if q else None
            spec = self.cfg.symbols.get(t.symbol)
            pnl = ((price - t.entry_price) * t.direction.sign * t.volume * spec.contract_size
                   if price is not None and spec else None)
            out.append(TradeStatus(
                trade=t, current_price=price, pnl_r=t.r_multiple(price) if price is not None else None, pnl=pnl,
                minutes_in_trade=self._minutes_in_trade(t, now), breakeven_moved=t.breakeven_moved,
                state=t.exit_manager_state,
            ))
        return out

    def recent_trades(self, n: int = 5) -> list[ClosedTrade]:
        return self.store.closed.recent(max(1, min(int(n), 500)))

    # ---- reports ----------------------------------------------------------------------------------
    def metrics(self, days: int | None = None) -> MetricsReport:
        since = self.clock.now() - days * 86400 if days else 0.0
        start = getattr(self.cfg.broker.paper, "start_balance", None) if self.cfg.broker.kind == "paper" else None
        if start is not None and since > 0:  # the window's equity starts where the account stood then
            start += self.store.closed.net_pnl_before(since)
        return compute_metrics(self.store.closed.since(since), starting_balance=start)

    def effective_config(self, symbol: str | None = None) -> dict:
        if symbol:
            sym = self.resolve_symbol(symbol)
            out = self.cfg.for_symbol(sym).model_dump(mode="json")
            out["symbol"] = sym
            out["symbol_spec"] = self.cfg.symbols[sym].model_dump(mode="json")
        else:
            out = self.cfg.model_dump(mode="json")
        out["config_version"] = self.cfg.short_version
        return mask_secrets_in(out)  # a password pasted into a text setting is not shown

    @property
    def config_version(self) -> str:
        return self.cfg.version

    def health(self) -> HealthReport:
        return health_report(self)

    def set_chat_link(self, name: str, state: str, detail: str = "", since: float | None = None) -> None:
        """The runner's report of a chat platform's connection (core cannot see the chats), for /health."""
        self.chat_links[name] = ChatLink(state=state, since=time.time() if since is None else since, detail=detail)
