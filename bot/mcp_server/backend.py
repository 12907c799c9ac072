"""What each MCP tool does, in the two places the server runs.

- `BotBackend`: inside `moneybot run` (config `mcp.enabled`). The tools call the running TradingService
  the chats use: the analysis is `service.assess` (the /scalp verdict), a proposal is stored by
  `service.propose_strategy` (never auto-executed) and its card, built by the router's /scalp code, is
  posted to every connected chat; the monitor manages the trade once a human taps Approve.
- `StandaloneBackend`: `moneybot mcp` with no bot in this process. It opens the shared SQLite store
  (WAL: safe beside a running bot) to read trades, metrics and proposals, and analyses from the broker
  (MT5) or the configured market data files (paper: the bars `moneybot analyse --json` reads, as of the
  last bar). It cannot reach a chat, so `propose_trade` queues a request in the store (`inbox.py`); the
  running bot's inbox task picks it up within seconds, proposes through `BotBackend`, and `get_proposal`
  on the request id then follows the real proposal.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bot.mcp_server import inbox
from bot.mcp_server.answers import AWAITING, analyse_output, masked_config, proposal_output, propose_output
from bot.mcp_server.tools import (
    AnalyseInput,
    AnalyseOutput,
    ClosedTradesOutput,
    HealthOutput,
    MetricsOutput,
    OpenTrade,
    OpenTradesOutput,
    ProposalOutput,
    ProposeOutput,
)
from core.domain.exceptions import ProposalError
from core.domain.models import AnalysisResult, ProposalState, TradeProposal

log = logging.getLogger(__name__)

AGENT_BANNER = "🤖 Proposed by an AI assistant over MCP: nothing happens unless a trader taps Approve."


def _open_trade(t, **live) -> OpenTrade:
    return OpenTrade(ticket=t.ticket, symbol=t.symbol, strategy=t.strategy, direction=t.direction.value,
                     volume=t.volume, entry_price=t.entry_price, stop_loss=t.sl, take_profit=t.tp,
                     entry_time=t.entry_time, proposal_id=t.proposal_id, state=t.exit_manager_state,
                     breakeven_moved=t.breakeven_moved, **live)


def _metrics_output(report, days: int | None) -> MetricsOutput:
    data = report.model_dump(mode="json", exclude={"equity", "equity_times"})
    return MetricsOutput(days=days, trades=report.trades, report=data)


def _resolve(cfg, symbol: str) -> str:
    name = cfg.resolve_symbol(symbol)
    if name is None:
        raise cfg.unknown_symbol(symbol)
    return name


class BotBackend:
    """The tools over the running bot's TradingService (inside `moneybot run`)."""

    mode = "in-bot"

    def __init__(self, service: Any, card: Callable[[AnalysisResult, list[TradeProposal]], Awaitable[Any]],
                 chats: Any) -> None:
        self.service = service
        self.cfg = service.cfg
        self.store = service.store
        self._card = card  # the router's /scalp card builder
        self._chats = chats  # `targets()` names the connected chats, `post(reply)` sends the card to them

    async def analyse(self, inp: AnalyseInput) -> AnalyseOutput:
        return analyse_output(await self.service.assess(inp.symbol), inp)

    async def open_trades(self) -> OpenTradesOutput:
        rows = [_open_trade(s.trade, current_price=s.current_price, pnl_r=s.pnl_r, pnl=s.pnl,
                            minutes_in_trade=s.minutes_in_trade) for s in self.service.status()]
        return OpenTradesOutput(trades=rows, source="running bot")

    async def closed_trades(self, n: int) -> ClosedTradesOutput:
        return ClosedTradesOutput(trades=self.service.recent_trades(n))

    async def metrics(self, days: int | None) -> MetricsOutput:
        return _metrics_output(self.service.metrics(days), days)

    async def health(self) -> HealthOutput:
        h = self.service.health()
        summary = "healthy" if h.ok else "problems: " + "; ".join(h.problems)
        return HealthOutput(ok=h.ok, mode="in-bot", summary=summary, report=h.model_dump(mode="json"))

    async def propose(self, symbol: str, strategy: str) -> ProposeOutput:
        if not self._chats.targets():  # a card nobody can tap would only expire
            raise ProposalError("No chat is connected to show the card to a trader, so nothing was proposed.")
        analysis, proposal = await self.service.propose_strategy(symbol, strategy)
        reply = await self._card(analysis, [proposal])
        reply.text = f"{AGENT_BANNER}\n{reply.text}"  # the trader must know a model, not a colleague, asked
        chats = await self._chats.post(reply)
        return propose_output(proposal, f"{AWAITING} ({', '.join(chats) or 'no chat took the card'})")

    async def proposal(self, proposal_id: str) -> ProposalOutput:
        p = self.service.proposal(proposal_id)
        if p is None:
            return inbox.request_status(self.store, proposal_id)
        if p.state is ProposalState.PENDING and p.expires_at < self.service.clock.now():
            p = p.model_copy(update={"state": ProposalState.EXPIRED})  # lapsed; the monitor marks it soon
        return proposal_output(p)

    def effective_config(self) -> dict[str, Any]:
        return masked_config(self.cfg)


class StandaloneBackend:
    """The tools from a separate `moneybot mcp` process: the shared store, plus its own analysis."""

    mode = "standalone"

    def __init__(self, cfg: Any, store: Any, analyser: Callable[[str], Awaitable[AnalysisResult]]) -> None:
        self.cfg = cfg
        self.store = store
        self._analyser = analyser

    async def analyse(self, inp: AnalyseInput) -> AnalyseOutput:
        return analyse_output(await self._analyser(_resolve(self.cfg, inp.symbol)), inp)

    async def open_trades(self) -> OpenTradesOutput:
        trades = sorted(self.store.trades.all(), key=lambda t: t.entry_time)
        return OpenTradesOutput(trades=[_open_trade(t) for t in trades], source="store")

    async def closed_trades(self, n: int) -> ClosedTradesOutput:
        return ClosedTradesOutput(trades=self.store.closed.recent(max(1, min(int(n), 500))))

    async def metrics(self, days: int | None) -> MetricsOutput:
        from core.api import compute_metrics

        since = time.time() - days * 86400 if days else 0.0
        return _metrics_output(compute_metrics(self.store.closed.since(since)), days)

    async def health(self) -> HealthOutput:
        seen = inbox.bot_last_seen(self.store)
        ks = self.store.kill_switch.get()
        age = None if seen is None else max(0.0, time.time() - seen)
        bot_ok = age is not None and age < inbox.BOT_STALE_SECONDS
        problems = [] if bot_ok else ["no running bot with mcp.enabled has polled the store recently: "
                                      "proposals will wait in the queue"]
        if ks.blocking:
            problems.append(f"entries are paused ({ks.reason or 'kill switch'})")
        report = {"store": str(self.store.path), "bot_last_seen_seconds_ago": None if age is None else round(age, 1),
                  "open_trades": len(self.store.trades.all()), "kill_switch": ks.model_dump(mode="json"),
                  "config_version": self.cfg.short_version, "problems": problems}
        return HealthOutput(ok=not problems, mode="standalone",
                            summary="healthy" if not problems else "problems: " + "; ".join(problems), report=report)

    async def propose(self, symbol: str, strategy: str) -> ProposeOutput:
        name = _resolve(self.cfg, symbol)
        rid = inbox.enqueue(self.store, name, strategy)
        return ProposeOutput(proposal_id=rid, status="queued", symbol=name, strategy=strategy,
                             message="queued for the running bot: it analyses again, posts the card to the "
                                     "traders' chat and then it is awaiting approval in chat; "
                                     "follow it with get_proposal")

    async def proposal(self, proposal_id: str) -> ProposalOutput:
        p = self.store.proposals.get(proposal_id)
        if p is not None:
            return proposal_output(p)
        return inbox.request_status(self.store, proposal_id)

    def effective_config(self) -> dict[str, Any]:
        return masked_config(self.cfg)


def file_analyser(cfg: Any) -> Callable[[str], Awaitable[AnalysisResult]]:
    """Paper mode without a bot: the configured market data as of its last bar (`moneybot analyse`)."""
    from bot.cli_analyse import run_analysis
    from core.api import MarketData

    market = MarketData(cfg)

    async def analyse(symbol: str) -> AnalysisResult:
        return await asyncio.to_thread(run_analysis, cfg, symbol, market=market)

    return analyse

