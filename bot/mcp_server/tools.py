"""The tools a language model may call: one pydantic input and output model each, plus the words it reads.

This table is the single source of the MCP tool list (`server.py`), the OpenAI function list and the
OpenAPI document (`schema.py`), so the three cannot drift. No tool approves, executes, closes, pauses or
changes config: the most a model can do is `propose_trade`, which posts a card a human must tap.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.domain.models import STRATEGY_NAMES, AnalysisResult, ClosedTrade, StrategyScore

Role = Literal["viewer", "trader"]
StrategyName = Literal[STRATEGY_NAMES]  # type: ignore[valid-type]
SYMBOL_FIELD = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._#-]+$",
                     description="Symbol as the broker names it, e.g. XAUUSDc (case does not matter).")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- inputs
class AnalyseInput(_In):
    symbol: str = SYMBOL_FIELD
    strategy_filter: StrategyName | None = Field(
        default=None, description="Only report this strategy (the verdict still comes from the full analysis).")
    check_risk_filters: bool = Field(
        default=True, description="Include each risk check with pass/fail and its reason. A proposal always "
                                  "runs them; false only shortens the answer.")


class NoInput(_In):
    pass


class ClosedTradesInput(_In):
    n: int = Field(default=10, ge=1, le=500, description="How many of the most recent closed trades.")


class MetricsInput(_In):
    days: int | None = Field(default=None, ge=1, le=3650, description="Only trades closed in the last N days; "
                                                                     "omit for all time.")


class ProposeInput(_In):
    symbol: str = SYMBOL_FIELD
    strategy: StrategyName = Field(description="The strategy to propose; it must be viable in a fresh analysis.")


class ProposalInput(_In):
    proposal_id: str = Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_-]+$",
                             description="The id propose_trade returned.")


# ---------------------------------------------------------------- outputs
class AnalyseOutput(AnalysisResult):
    """The seed's response shape: `moneybot analyse --json` (range with boundaries, critical zones, nested
    ranges and touches; each risk check; the strategies with entry/SL/TP/R:R/score; confidence, warnings,
    data timestamps) plus the verdict and the top strategy spelled out for the model."""

    verdict: Literal["tradeable", "no_trade"]
    top_strategy: StrategyScore | None = None
    strategy_filter: str | None = None
    risk_checks_shown: bool = True


class SymbolInfo(BaseModel):
    name: str
    description: str = ""
    digits: int


class SymbolsOutput(BaseModel):
    symbols: list[SymbolInfo]


class OpenTrade(BaseModel):
    ticket: int
    symbol: str
    strategy: str
    direction: str
    volume: float
    entry_price: float
    stop_loss: float
    take_profit: float
    entry_time: float
    proposal_id: str | None = None
    state: str = "active"
    breakeven_moved: bool = False
    current_price: float | None = None
    pnl_r: float | None = None
    pnl: float | None = None
    minutes_in_trade: float | None = None


class OpenTradesOutput(BaseModel):
    trades: list[OpenTrade]
    source: Literal["running bot", "store"] = Field(
        description="'store' when read by a standalone server: no live prices then.")


class ClosedTradesOutput(BaseModel):
    trades: list[ClosedTrade]


class MetricsOutput(BaseModel):
    days: int | None = None
    trades: int
    report: dict[str, Any] = Field(description="The /metrics report: win rate, expectancy in R and money, "
                                               "profit factor, drawdown, per strategy/session/direction.")


class HealthOutput(BaseModel):
    ok: bool
    mode: Literal["in-bot", "standalone"]
    summary: str
    report: dict[str, Any] = Field(default_factory=dict)


ProposalStatus = Literal["queued", "pending", "approved", "executing", "executed", "rejected", "expired", "failed"]


class ProposeOutput(BaseModel):
    proposal_id: str
    status: ProposalStatus
    message: str = Field(description="What to tell the trader, e.g. 'awaiting approval in chat'.")
    symbol: str
    strategy: str
    direction: str | None = None
    entry: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    rr: float | None = None
    expires_at: float | None = None


class ProposalOutput(BaseModel):
    proposal_id: str
    status: ProposalStatus
    message: str
    symbol: str | None = None
    strategy: str | None = None
    ticket: int | None = None
    fill_price: float | None = None
    decided_by: str | None = None
    expires_at: float | None = None


# ---------------------------------------------------------------- the table
@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input: type[BaseModel]
    output: type[BaseModel]
    role: Role = "viewer"
    read_only: bool = True


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("analyse_range_scalp_opportunity",
             "Is this symbol in a range, and can it be scalped now? Returns the detected range (type, high/low, "
             "critical edge zones, nested ranges, touches), every risk check with pass/fail and its reason, the "
             "scored strategies (entry, stop loss, take profit, R:R, score), the top strategy, the confidence "
             "(0-100), warnings and data timestamps. verdict 'no_trade' means do not trade: say why from the "
             "failed checks. This only reads; nothing is traded.",
             AnalyseInput, AnalyseOutput),
    ToolSpec("list_symbols", "The symbols MoneyBot is configured for, with their price digits.",
             NoInput, SymbolsOutput),
    ToolSpec("get_open_trades", "The open range-scalp trades: entry, stop, target, state and (from the running "
             "bot) current price and profit in R.", NoInput, OpenTradesOutput),
    ToolSpec("get_closed_trades", "The most recent closed trades from the journal, newest first, with the exit "
             "reason and result in R.", ClosedTradesInput, ClosedTradesOutput),
    ToolSpec("get_metrics", "Performance over the journal: win rate, expectancy in R and money, profit factor, "
             "drawdown, per strategy, session and direction.", MetricsInput, MetricsOutput),
    ToolSpec("get_health", "Is MoneyBot healthy: broker link, monitor heartbeat, kill switch, errors, chats.",
             NoInput, HealthOutput),
    ToolSpec("propose_trade",
             "Propose ONE strategy on a symbol to the human traders. A fresh analysis must find the strategy "
             "viable; the card with its chart and Approve/Reject buttons is posted to the traders' chat. It "
             "NEVER executes: only a trader's tap does. Tell the user the trade is awaiting approval in chat, "
             "and check get_proposal later. Needs a trader token.",
             ProposeInput, ProposeOutput, role="trader", read_only=False),
    ToolSpec("get_proposal", "The state of a proposal: queued (waiting for the running bot), pending (awaiting "
             "a tap), approved, executed (with ticket and fill price), rejected, expired, or failed with the "
             "reason.", ProposalInput, ProposalOutput),
)
BY_NAME = {t.name: t for t in TOOLS}

SCALP_CHECK_PROMPT = """You are helping a trader decide on a range scalp of {symbol} with MoneyBot.
1. Call analyse_range_scalp_opportunity(symbol="{symbol}").
2. Lead with the verdict in one line: TRADEABLE or NO TRADE, the confidence (0-100) and the range type.
3. If NO TRADE: list the failed risk checks with their reasons, in the trader's words. Do not propose.
4. If TRADEABLE: give the top strategy as side, entry, stop loss, take profit and R:R, then the other
   viable strategies in one line each, then any warnings. Quote prices exactly as returned.
5. Only if the trader asks for it, call propose_trade(symbol, strategy). Say that the card is now in the
   traders' chat awaiting approval; nothing is executed until a human taps Approve.
6. Never claim a trade was placed unless get_proposal reports 'executed' with a ticket.
"""
