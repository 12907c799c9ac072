"""Taking a broker position that nothing here knows under management, and journalling one the deal
history shows opened and closed without us.

Both start-up recovery and the running monitor (and its late-fill scan) need this, so it lives with
the exits rather than in `core.trading.recovery`: the monitor must not reach up into trading.
"""
from __future__ import annotations

import asyncio
import logging

from core.brokers.base import Deal, Position
from core.brokers.tags import proposal_id_from_comment
from core.domain.models import ActiveTrade, Direction, ProposalState
from core.domain.wording import symbol_price
from core.exits.deals import closed_trade_from_deals
from core.ops.alert_texts import exit_reason_words, trade_label
from core.store.journal import TradeMetadata

log = logging.getLogger(__name__)

DEAL_SCAN_KEY = "recovery.deals_scanned_until"
DEAL_SCAN_OVERLAP = 86_400.0  # history can appear late in the terminal: re-read a day before the last scan
# proposals that may have sent an order the store never recorded (failed = "not found at the time")
_MAY_HAVE_SENT = (ProposalState.FAILED, ProposalState.EXECUTING, ProposalState.APPROVED)
IN_PROGRESS = (ProposalState.PENDING, ProposalState.APPROVED, ProposalState.EXECUTING)


def deal_scan_start(store) -> float | None:
    """Where the deal-history scan starts; None = nothing of ours can be missing (first run, no proposals)."""
    last = store.kv.get(DEAL_SCAN_KEY)
    if last is not None:
        return float(last) - DEAL_SCAN_OVERLAP
    maybe = store.proposals.list(states=_MAY_HAVE_SENT)
    return min(p.created_at for p in maybe) - 1 if maybe else None


async def journal_unknown_closed(store, broker, exits, engine, executor, notifier, clock,
                                 open_positions: dict[int, Position], magics: list[int]) -> list[int]:
    """Journal (and alert) every position with one of `magics` that opened and closed at the broker
    while nothing here knew it; return their tickets. Used at start-up and by the running monitor
    (`core.exits.late_fills`): the kv watermark plus "already journalled" checks make each position
    journalled once, whichever scan sees it first. Raises BrokerError if the history cannot be listed."""
    scanned_at = clock.now()
    since = deal_scan_start(store)
    if since is None:
        store.kv.set(DEAL_SCAN_KEY, scanned_at)
        return []
    wanted = set(magics)
    by_position: dict[int, list[Deal]] = {}
    for d in await asyncio.to_thread(broker.history_deals, None, since):
        if d.magic in wanted:
            by_position.setdefault(d.position_id, []).append(d)
    busy = getattr(engine, "in_flight", set())
    complete = True
    journalled: list[int] = []
    for pos_id in sorted(by_position):
        try:
            done = await _journal_one(store, broker, exits, executor, notifier, clock, open_positions, busy, pos_id)
        except Exception:  # noqa: BLE001 - one bad history must not stop the start-up; retried next time
            log.exception("journalling position %s found in the deal history failed", pos_id)
            complete = False
            continue
        if done:
            journalled.append(pos_id)
    if complete:
        store.kv.set(DEAL_SCAN_KEY, scanned_at)
    return journalled


async def _journal_one(store, broker, exits, executor, notifier, clock, open_positions, busy, pos_id: int) -> bool:
    """Journal one position seen in the history if nothing knows it; True if it was journalled now."""
    if (pos_id in open_positions or exits.get(pos_id) is not None or store.closed.has(pos_id)
            or store.trades.get(pos_id) is not None):
        return False  # open (orphan adoption), monitored, or already journalled
    deals = await asyncio.to_thread(broker.history_deals, pos_id, None)  # the entry may predate `since`
    entry = next((d for d in deals if d.entry == "in"), None)
    if entry is None:
        return False
    pid = proposal_id_from_comment(entry.comment)
    proposal = store.proposals.get(pid) if pid else None
    if pid in busy or (proposal is not None and proposal.state in IN_PROGRESS):
        return False  # its execution (or the next recovery's _resolve_proposals) records it
    trade = _trade_from_entry(entry, proposal)
    if closed_trade_from_deals(trade, deals) is None:
        return False  # not fully closed in the history yet: the next start-up looks again (overlap)
    # two steps, each one transaction: a crash between them leaves a stored trade that is not open,
    # which the next start-up journals as "closed while the bot was down"
    saved = store.record_adopted(trade, data={"found_at": clock.now(), "found_in": "deal_history"})
    exits.register_trade(saved, persisted=True)
    closed = await executor.record_broker_close(
        saved, reason_text="opened and closed at the broker while I did not know it (late fill)")
    if closed is None:  # cannot happen with the deals read above; the monitor retries the active trade
        return False
    was = f" (proposal {proposal.id} was marked {proposal.state.value})" if proposal else ""
    notifier.error("orphaned_trades", f"journalled position {pos_id} found only in the deal history",
                   alert=False, symbol=entry.symbol, ticket=pos_id)
    notifier.alert("orphan_adopted", "critical", f"ORPHAN FOUND IN HISTORY - {entry.symbol} ticket {pos_id}",
                   f"{entry.symbol} {entry.type} {entry.volume:g} at {entry.price} with our magic number opened "
                   f"and closed at the broker without my knowing it{was}. I journalled it from the deal "
                   f"history: exit {symbol_price(getattr(notifier, '_cfg', None), entry.symbol, closed.exit_price)} "
                   f"({exit_reason_words(closed.exit_reason)}), P&L {closed.pnl - abs(closed.commission):+.2f} "
                   "after commission, as on its close page. "
                   "Please check it in MetaTrader.", symbol=entry.symbol, ticket=pos_id, trade=saved,
                   dedup_key=f"orphan_history:{pos_id}")
    return True


def _trade_from_entry(entry: Deal, proposal) -> ActiveTrade:
    """The trade an entry deal opened, with the proposal's plan when its comment names one."""
    parts = (entry.comment or "").split(":")
    s = proposal.strategy if proposal else None
    strategy = s.strategy if s else (parts[2] if len(parts) > 2 and parts[2] else "unknown")
    meta = (TradeMetadata.dump_from_proposal(proposal) if proposal else
            {"trade_type": "range_scalp", "strategy": strategy})
    meta["entry_reason"] = "late_fill_found_in_history"
    return ActiveTrade(
        ticket=entry.position_id, proposal_id=proposal.id if proposal else None, symbol=entry.symbol,
        strategy=strategy, direction=Direction.LONG if entry.type == "buy" else Direction.SHORT,
        entry_price=entry.price, sl=s.stop_loss if s else 0.0, tp=s.take_profit if s else 0.0,
        initial_sl=s.stop_loss if s else 0.0, volume=entry.volume, entry_time=entry.time,
        range_data=proposal.analysis.range if proposal else None, exit_manager_state="orphan",
        magic=entry.magic, comment=entry.comment, metadata=meta,
    )


def our_magics(cfg, trades=()) -> list[int]:
    """Every magic number a range scalp of ours can carry: the stored trades', the global one and each
    symbol's override (an orphan with a per-symbol magic must be found even when no trade uses it)."""
    magics = {t.magic for t in trades if t.magic} | {cfg.execution.magic_number}
    magics |= {cfg.for_symbol(s).execution.magic_number for s in getattr(cfg, "symbols", {})}
    return sorted(magics)


def in_flight(store, pos: Position) -> bool:
    """A position whose proposal is still being executed belongs to that execution, not to adoption."""
    pid = proposal_id_from_comment(pos.comment)
    p = store.proposals.get(pid) if pid else None
    return p is not None and p.state in (ProposalState.PENDING, ProposalState.APPROVED, ProposalState.EXECUTING)


def adopt_position(store, exits, notifier, pos: Position, clock) -> ActiveTrade:
    """Register a position with our magic that nothing knows (journal 'adopted', alert, monitor it)."""
    pid = proposal_id_from_comment(pos.comment)
    proposal = store.proposals.get(pid) if pid else None
    parts = (pos.comment or "").split(":")
    strategy = proposal.strategy.strategy if proposal else (parts[2] if len(parts) > 2 and parts[2] else "unknown")
    trade = ActiveTrade(
        ticket=pos.key, proposal_id=proposal.id if proposal else None, symbol=pos.symbol, strategy=strategy,
        direction=Direction.LONG if pos.type == "buy" else Direction.SHORT, entry_price=pos.price_open,
        sl=pos.sl, tp=pos.tp, initial_sl=proposal.strategy.stop_loss if proposal else pos.sl, volume=pos.volume,
        entry_time=pos.time or clock.now(), range_data=proposal.analysis.range if proposal else None,
        exit_manager_state="orphan", magic=pos.magic, comment=pos.comment,
        metadata={"trade_type": "range_scalp", "strategy": strategy, "entry_reason": "adopted_orphan"},
    )
    saved = store.record_adopted(trade, data={"found_at": clock.now()})
    exits.register_trade(saved, persisted=True)
    px = lambda x: symbol_price(getattr(notifier, "_cfg", None), pos.symbol, x)  # noqa: E731 - the card's digits
    sl = f"SL {px(pos.sl)}" if pos.sl else "NO stop loss"
    sl += f", TP {px(pos.tp)}" if pos.tp else ", no TP"
    notifier.error("orphaned_trades", f"adopted orphan position {pos.key} {pos.symbol}", alert=False,
                   symbol=pos.symbol, ticket=pos.key)
    notifier.alert("orphan_adopted", "critical", f"ORPHAN ADOPTED - {trade_label(saved)}",
                   f"Found {pos.symbol} {trade.direction.value.upper()} {pos.volume:g} at {px(pos.price_open)} ({sl}) "
                   "with this bot's magic number but not in its records. It is now monitored like any scalp: "
                   "check it in MetaTrader.",
                   symbol=pos.symbol, ticket=pos.key, trade=saved)
    return saved
