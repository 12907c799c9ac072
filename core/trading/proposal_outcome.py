"""What became of a trade proposal, in one sentence a trader can act on.

Kept apart from `core.trading.execution` because every caller that answers a tap (approve, reject, a repeat,
recovery after a crash) needs the same wording for the same stored state, whoever moved it there."""
from __future__ import annotations

from pydantic import BaseModel

from core.domain.models import ProposalState, TradeProposal


class ProposalOutcome(BaseModel):
    """What happened to an approve/reject/close request, with a sentence for the trader."""

    proposal_id: str
    state: ProposalState | None = None
    ok: bool
    message: str
    ticket: int | None = None
    fill_price: float | None = None
    symbol: str | None = None
    strategy: str | None = None
    duplicate: bool = False  # the request was a repeat (double tap / replayed callback)
    detail: str = ""  # for a card that already shows the state, price and ticket: only what it lacks


_FIXED_TEXTS = {
    ProposalState.PENDING: "This proposal is still waiting for a decision.",
    ProposalState.APPROVED: "This proposal was approved and is being executed.",
    ProposalState.EXECUTING: "This proposal is being executed right now.",
    ProposalState.EXPIRED: "This proposal expired before it was approved; run /scalp again for a fresh one.",
}


def outcome_of(p: TradeProposal, duplicate: bool = False, ok: bool | None = None) -> ProposalOutcome:
    """The outcome the stored state `p` says. `ok` (default: executed) is the caller's verdict when it differs
    (a reject that won is ok), set in the one model built rather than in a copy of it."""
    st = p.state  # only the sentence for this state is built (an f-string per state cost more than the pick)
    if st is ProposalState.FAILED:
        msg = p.message or "This proposal failed."
    elif st is ProposalState.EXECUTED:
        msg = f"Executed: ticket {p.ticket} at {p.fill_price}."
    elif st is ProposalState.REJECTED:
        msg = f"This proposal was rejected{' by ' + p.decided_by if p.decided_by else ''}."
    else:
        msg = _FIXED_TEXTS[st]
    if duplicate and st is not ProposalState.FAILED:
        msg = "Already handled. " + msg
    return ProposalOutcome(
        proposal_id=p.id, state=p.state, ok=p.state is ProposalState.EXECUTED if ok is None else ok, message=msg,
        ticket=p.ticket, fill_price=p.fill_price, symbol=p.symbol, strategy=p.strategy.strategy, duplicate=duplicate,
    )
