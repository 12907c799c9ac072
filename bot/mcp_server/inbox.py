"""How a standalone `moneybot mcp` hands a proposal to the running bot: a queue in the shared store.

The standalone server cannot reach a chat, and must not trade, so `propose_trade` there writes a request
(`mcp_request:<id>` in the store's key-value table: symbol, strategy, state "queued"). The running bot
(`moneybot run` with `mcp.enabled`) polls the queue every few seconds, proposes each request through the
same path as an in-bot MCP call (fresh analysis, one pending proposal, the /scalp card in every chat,
never auto-executed) and writes the proposal id back, so `get_proposal(request id)` follows it to
executed, rejected or expired. A request older than `MAX_AGE_SECONDS` when the bot sees it is failed
rather than proposed: the trader's intent is stale. SQLite WAL makes the two processes' writes safe.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

from bot.mcp_server.answers import proposal_output
from bot.mcp_server.tools import ProposalOutput
from core.domain.exceptions import UserFacingError

log = logging.getLogger(__name__)

PREFIX = "mcp_request:"
SEEN_KEY = "mcp_inbox:seen"
POLL_SECONDS = 2.0
MAX_AGE_SECONDS = 300.0
BOT_STALE_SECONDS = 30.0
_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"


def enqueue(store: Any, symbol: str, strategy: str) -> str:
    rid = "q" + "".join(secrets.choice(_ALPHABET) for _ in range(11))
    store.kv.set(PREFIX + rid, {"symbol": symbol, "strategy": strategy, "state": "queued",
                                "created_at": time.time(), "proposal_id": None, "message": ""})
    return rid


def request_status(store: Any, rid: str) -> ProposalOutput:
    req = store.kv.get(PREFIX + rid)
    if req is None:
        raise UserFacingError(f"There is no proposal or queued request with id '{rid}'.")
    pid = req.get("proposal_id")
    if pid:
        p = store.proposals.get(pid)
        if p is not None:
            return proposal_output(p)
    state = req.get("state", "queued")
    msg = req.get("message") or ("waiting for the running bot to post the card" if state == "queued" else state)
    return ProposalOutput(proposal_id=rid, status="failed" if state == "failed" else "queued", message=msg,
                          symbol=req.get("symbol"), strategy=req.get("strategy"))


def bot_last_seen(store: Any) -> float | None:
    v = store.kv.get(SEEN_KEY)
    return float(v) if isinstance(v, int | float) else None


async def process_once(store: Any, backend: Any, now: float | None = None) -> int:
    """Propose every queued request once; returns how many were handled."""
    now = time.time() if now is None else now
    store.kv.set(SEEN_KEY, now)
    handled = 0
    for key, req in store.kv.items(PREFIX).items():
        if not isinstance(req, dict) or req.get("state") != "queued":
            continue
        handled += 1
        if now - float(req.get("created_at") or 0) > MAX_AGE_SECONDS:
            req.update(state="failed", message="the request waited too long for the running bot; ask again")
            store.kv.set(key, req)
            continue
        req["state"] = "proposing"
        store.kv.set(key, req)
        try:
            out = await backend.propose(req["symbol"], req["strategy"])
            req.update(state="proposed", proposal_id=out.proposal_id, message=out.message)
        except UserFacingError as e:
            req.update(state="failed", message=e.message)
        except Exception as e:  # noqa: BLE001 - one bad request must not stop the queue
            log.exception("queued MCP proposal %s failed", key)
            req.update(state="failed", message=f"the bot could not propose it ({type(e).__name__})")
        store.kv.set(key, req)
    return handled


async def run_inbox(store: Any, backend: Any, interval: float = POLL_SECONDS) -> None:
    while True:
        try:
            await process_once(store, backend)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001
            log.exception("MCP request queue poll failed; retrying")
        await asyncio.sleep(interval)
