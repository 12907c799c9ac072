"""A closed trade, read from the broker's deal history.

`closed_trade_from_deals` is the single way a ClosedTrade is built, whether we closed the position,
the broker's SL/TP closed it, or it closed while the bot was down: the broker's deals are the truth
for prices and P&L, so the journal always agrees with the broker's history.
"""
from __future__ import annotations

from core.brokers.base import Deal
from core.brokers.tags import exit_kind_from_comment
from core.domain.models import ActiveTrade, ClosedTrade


def _sl_reason(trade: ActiveTrade) -> str:
    # a stop at or past the entry is a breakeven stop even when we did not record moving it (a move
    # sent but not saved and then synced from the broker, or one a trader made in MetaTrader)
    protective = trade.sl > 0 and (trade.sl - trade.entry_price) * trade.direction.sign >= 0
    return "breakeven_stop" if trade.breakeven_moved or protective else "stop_loss"


def closed_trade_from_deals(
    trade: ActiveTrade, deals: list[Deal], *, reason: str | None = None, mfe_r: float | None = None,
    mae_r: float | None = None,
) -> ClosedTrade | None:
    """Build the journal's ClosedTrade from the position's deals; None while it is still (partly) open."""
    # a trade's ticket IS its position identifier (DEAL_POSITION_ID on every deal of the position), which a
    # swap re-open or a netting reversal does not change, unlike the position's ticket
    mine = [d for d in deals if d.position_id == trade.ticket]
    outs = [d for d in mine if d.entry in ("out", "inout")]
    if not outs:
        return None
    out_volume = sum(d.volume for d in outs)
    if out_volume + 1e-9 < trade.volume:
        return None
    ins = [d for d in mine if d.entry == "in"]
    entry_price = (sum(d.price * d.volume for d in ins) / sum(d.volume for d in ins)) if ins else trade.entry_price
    exit_price = sum(d.price * d.volume for d in outs) / out_volume
    last = max(outs, key=lambda d: (d.time, d.ticket))
    if last.reason == "sl":
        why = _sl_reason(trade)
    elif last.reason == "tp":
        why = "take_profit"
    elif last.reason == "so":
        why = "stop_out"
    else:  # a client close: ours if its comment carries our exit tag (deals read late, or after a crash)
        why = reason or exit_kind_from_comment(last.comment) or "closed_outside_bot"
    risk = trade.initial_risk
    r = (exit_price - entry_price) * trade.direction.sign / risk if risk > 0 else 0.0
    meta = dict(trade.metadata)
    meta.setdefault("trade_type", "range_scalp")
    if trade.range_data is not None:
        meta.setdefault("range_type", trade.range_data.range_type)
        meta.setdefault("range_high", trade.range_data.range_high)
        meta.setdefault("range_low", trade.range_data.range_low)
    meta["breakeven_moved"] = trade.breakeven_moved
    meta["exit_deal_tickets"] = [d.ticket for d in outs]
    mfe = trade.mfe_r if mfe_r is None else mfe_r
    mae = trade.mae_r if mae_r is None else mae_r
    return ClosedTrade(
        ticket=trade.ticket,
        proposal_id=trade.proposal_id,
        symbol=trade.symbol,
        strategy=trade.strategy,
        direction=trade.direction,
        volume=trade.volume,
        entry_price=entry_price,
        exit_price=exit_price,
        initial_sl=trade.initial_sl,
        tp=trade.tp,
        entry_time=trade.entry_time,
        exit_time=float(last.time),
        pnl=float(sum(d.profit + d.swap for d in mine)),
        commission=float(sum(d.commission for d in mine)),
        r_multiple=r,
        planned_rr=float(meta.get("planned_rr") or 0.0),
        mfe_r=max(mfe, r, 0.0),
        mae_r=min(mae, r, 0.0),
        exit_reason=why,
        session=str(meta.get("session") or ""),
        metadata=meta,
    )
