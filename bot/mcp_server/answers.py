"""Domain results turned into the tools' output models (shared by both backends and the request queue)."""
from __future__ import annotations

from typing import Any

from bot.mcp_server.tools import (
    AnalyseInput,
    AnalyseOutput,
    ProposalOutput,
    ProposeOutput,
    SymbolInfo,
    SymbolsOutput,
)
from core.domain.models import AnalysisResult, ProposalState, TradeProposal

AWAITING = "awaiting approval in chat"
SECRET_WORDS = ("token", "password", "secret", "api_key", "apikey", "login")


def analyse_output(result: AnalysisResult, inp: AnalyseInput) -> AnalyseOutput:
    """The analysis as the tool answers it: unchanged for the defaults (so it equals `analyse --json`)."""
    data = result.model_dump()
    strategies = result.strategies
    warnings = list(result.warnings)
    if inp.strategy_filter:
        strategies = [s for s in strategies if s.strategy == inp.strategy_filter]
        data["strategies"] = [s.model_dump() for s in strategies]
    if not inp.check_risk_filters:
        data["filters"] = []
        warnings.append("Risk checks left out of this answer on request; a proposal always runs them.")
        data["warnings"] = warnings
    top = next((s for s in strategies if s.viable), None)
    return AnalyseOutput(**data, verdict="tradeable" if result.passed else "no_trade",
                         top_strategy=top, strategy_filter=inp.strategy_filter,
                         risk_checks_shown=inp.check_risk_filters)


def symbols_output(cfg) -> SymbolsOutput:
    return SymbolsOutput(symbols=[SymbolInfo(name=n, description=s.description, digits=s.digits)
                                  for n, s in cfg.symbols.items()])


def masked_config(cfg) -> dict[str, Any]:
    """The effective config with anything secret-looking masked (secrets live in env/.env, never in the
    JSON; this is the belt to that pair of braces)."""

    def walk(v: Any, key: str = "") -> Any:
        if isinstance(v, dict):
            return {k: walk(x, k) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x, key) for x in v]
        if any(w in key.lower() for w in SECRET_WORDS) and v not in (None, "", 0):
            return "***"
        return v

    out = walk(cfg.model_dump(mode="json"))
    out["config_version"] = cfg.short_version
    return out


def proposal_output(p: TradeProposal) -> ProposalOutput:
    words = {
        ProposalState.PENDING: AWAITING,
        ProposalState.APPROVED: "approved in chat; the order is being sent",
        ProposalState.EXECUTING: "the order is at the broker; waiting for its confirmation",
        ProposalState.EXECUTED: f"executed: ticket {p.ticket} filled at {p.fill_price}",
        ProposalState.REJECTED: "rejected in chat",
        ProposalState.EXPIRED: "expired: nobody approved it in time",
        ProposalState.FAILED: f"failed: {p.message or 'no reason recorded'}",
    }
    return ProposalOutput(proposal_id=p.id, status=p.state.value, message=words.get(p.state, p.state.value),
                          symbol=p.symbol, strategy=p.strategy.strategy, ticket=p.ticket, fill_price=p.fill_price,
                          decided_by=p.decided_by, expires_at=p.expires_at)


def propose_output(p: TradeProposal, message: str = AWAITING) -> ProposeOutput:
    s = p.strategy
    return ProposeOutput(proposal_id=p.id, status=p.state.value, message=message, symbol=p.symbol,
                         strategy=s.strategy, direction=s.direction.value, entry=s.entry, stop_loss=s.stop_loss,
                         take_profit=s.take_profit, rr=s.rr, expires_at=p.expires_at)


