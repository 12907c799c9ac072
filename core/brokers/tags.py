"""How MoneyBot marks its orders at the broker, and reads the marks back.

A range scalp's order carries our magic number and the comment `rs:<proposal id>:<tag>`, so that a
position or deal found at the broker (after a crash, a late fill, a manual close) can be tied to its
proposal. MT5 limits comments to 31 characters, and the id is kept within the cut.
"""
from __future__ import annotations

from core.brokers.base import MT5_COMMENT_MAX, Broker, Deal, Position

COMMENT_PREFIX = "rs"


def order_comment(proposal_id: str | None, tag: str) -> str:
    """`rs:<proposal id>:<tag>` cut to MT5's 31 chars; the id always survives the cut (≤16 chars)."""
    pid = proposal_id or "-"
    return f"{COMMENT_PREFIX}:{pid}:{tag}"[:MT5_COMMENT_MAX]


# exit kinds sent as the close order's comment tag (cut to 10 chars there); read back from the deal
EXIT_KINDS = ("range_invalidated", "max_time_in_trade", "stalled", "opposite_edge_reached", "manual_close",
              "emergency")
EXIT_TAG_MAX = 10


def exit_kind_from_comment(comment: str) -> str | None:
    """The exit kind of one of OUR close orders (`rs:<id>:<tag>`), else None (a human or another EA)."""
    parts = (comment or "").split(":")
    if len(parts) < 3 or parts[0] != COMMENT_PREFIX:
        return None
    # only known kinds: a broker that copies the position's comment ("rs:<id>:<strategy>") onto a manual
    # close's deal must not turn a strategy name into an exit reason
    return next((k for k in EXIT_KINDS if k[:EXIT_TAG_MAX] == parts[2]), None)


def proposal_id_from_comment(comment: str) -> str | None:
    parts = (comment or "").split(":")
    if len(parts) >= 2 and parts[0] == COMMENT_PREFIX and parts[1] and parts[1] != "-":
        return parts[1]
    return None


def find_proposal_at_broker(
    broker: Broker, proposal_id: str, magic: int, since: float | None
) -> tuple[Position | None, list[Deal]]:
    """The open position and/or the deals whose comment names `proposal_id` (entry deals first)."""
    pos = next(
        (p for p in broker.positions(magic=magic) if proposal_id_from_comment(p.comment) == proposal_id), None
    )
    deals = [d for d in broker.history_deals(since=since) if proposal_id_from_comment(d.comment) == proposal_id]
    return pos, deals
