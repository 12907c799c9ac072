"""The ordered schema migrations. Append new steps; never edit a released one.

Each row keeps the full pydantic model as JSON (`data`) for an exact round trip, plus the columns
that are queried or constrained (state, symbol, times), so a new model field needs no migration
while a new query only needs an index. A proposal is the exception since schema 4: its analysis, shared by
the proposals of one analysis and never changed, is its own row (`analyses`, see proposal_rows.py).
"""
from __future__ import annotations

from core.store.db import Migration
from core.store.proposal_rows import migrate_v4

V1_CORE = """
CREATE TABLE proposals (
    id          TEXT PRIMARY KEY,
    symbol      TEXT NOT NULL,
    strategy    TEXT NOT NULL,
    state       TEXT NOT NULL,
    created_at  REAL NOT NULL,
    expires_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    decided_by  TEXT,
    ticket      INTEGER,
    data        TEXT NOT NULL
);
CREATE INDEX proposals_state ON proposals(state, expires_at);

CREATE TABLE active_trades (
    ticket       INTEGER PRIMARY KEY,
    proposal_id  TEXT,
    symbol       TEXT NOT NULL,
    strategy     TEXT NOT NULL,
    state        TEXT NOT NULL,
    magic        INTEGER NOT NULL DEFAULT 0,
    version      INTEGER NOT NULL DEFAULT 0,
    entry_time   REAL NOT NULL,
    data         TEXT NOT NULL
);
CREATE INDEX active_trades_symbol ON active_trades(symbol);

CREATE TABLE journal (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    ts           REAL NOT NULL,
    event        TEXT NOT NULL,
    ticket       INTEGER,
    proposal_id  TEXT,
    symbol       TEXT,
    data         TEXT NOT NULL
);
CREATE INDEX journal_ticket ON journal(ticket, id);
CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;

CREATE TABLE closed_trades (
    ticket       INTEGER PRIMARY KEY,
    proposal_id  TEXT,
    symbol       TEXT NOT NULL,
    strategy     TEXT NOT NULL,
    entry_time   REAL NOT NULL,
    exit_time    REAL NOT NULL,
    pnl          REAL NOT NULL,
    r_multiple   REAL NOT NULL,
    exit_reason  TEXT NOT NULL,
    data         TEXT NOT NULL
);
CREATE INDEX closed_trades_exit_time ON closed_trades(exit_time);
"""

V2_RELIABILITY = """
CREATE TABLE error_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts          REAL NOT NULL,
    error_type  TEXT NOT NULL,
    severity    TEXT NOT NULL,
    message     TEXT NOT NULL DEFAULT '',
    symbol      TEXT,
    ticket      INTEGER,
    action      TEXT NOT NULL DEFAULT '',
    outcome     TEXT NOT NULL DEFAULT '',
    context     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX error_events_ts ON error_events(ts, severity);

CREATE TABLE kill_switch (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    data  TEXT NOT NULL
);
CREATE TABLE kill_switch_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    ts      REAL NOT NULL,
    action  TEXT NOT NULL,
    by      TEXT,
    reason  TEXT NOT NULL DEFAULT '',
    data    TEXT NOT NULL
);

CREATE TABLE alerts_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts          REAL NOT NULL,
    kind        TEXT NOT NULL,
    severity    TEXT NOT NULL,
    title       TEXT NOT NULL,
    text        TEXT NOT NULL,
    symbol      TEXT,
    ticket      INTEGER,
    dedup_key   TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL,
    deliveries  TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX alerts_log_ts ON alerts_log(ts);

CREATE TABLE kv (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  REAL NOT NULL
);
"""

# what an alert's chart is drawn from (its trade, range and exit price, as JSON): a catch-up copy sent
# after a restart is rebuilt from the log and should carry its chart like the live one did
V3_ALERT_CHART = """
ALTER TABLE alerts_log ADD COLUMN chart TEXT;
"""

MIGRATIONS: list[Migration] = [
    Migration(1, "core tables: proposals, active trades, journal, closed trades", V1_CORE),
    Migration(2, "reliability: error events, kill switch, alert log, key-value state", V2_RELIABILITY),
    Migration(3, "alert log keeps what an alert's chart is drawn from", V3_ALERT_CHART),
    # the analysis of a proposal in its own row, written once for all the proposals of one analysis
    # (core/store/proposal_rows.py): a transition rewrites half a kilobyte instead of four
    Migration(4, "a proposal's analysis in its own row", migrate_v4),
]
