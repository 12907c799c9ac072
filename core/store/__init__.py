"""Persistence: one SQLite file (WAL, synchronous=FULL, migrations) with one repository per table.

Entry point: `Store(path, clock)` or `Store.from_config(cfg, clock)`. See `core/store/store.py` for the
atomic lifecycle steps and `core/store/db.py` for the transaction and concurrency rules.
"""
from core.store.db import Database, Migration, StoreError, TransactionMisuse
from core.store.errors_repo import ErrorEvent
from core.store.journal import JOURNAL_EVENTS, JournalEntry, TradeMetadata
from core.store.proposals import (
    ALLOWED_TRANSITIONS,
    IllegalTransition,
    is_valid_proposal_id,
    new_proposal_id,
)
from core.store.state import KillSwitchState
from core.store.store import DEFAULT_STORE_PATH, ProposalConflict, Store
from core.store.trades import DuplicateTradeError, StaleTradeError

__all__ = [
    "ALLOWED_TRANSITIONS", "DEFAULT_STORE_PATH", "JOURNAL_EVENTS", "Database", "DuplicateTradeError",
    "ErrorEvent", "IllegalTransition", "JournalEntry", "KillSwitchState", "Migration", "ProposalConflict",
    "StaleTradeError", "Store", "StoreError", "TradeMetadata", "TransactionMisuse", "is_valid_proposal_id",
    "new_proposal_id",
]
