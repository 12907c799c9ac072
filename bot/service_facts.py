"""Small facts the chat layer reads from the service besides command results: the account currency
and whether new entries are blocked. Both are best effort: a card is still worth sending without them.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Any

log = logging.getLogger(__name__)


CURRENCY_TIMEOUT_S = 2.0
_currency: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


async def account_currency(service: Any) -> str:
    """The account's currency ("USD", or "USC" on a cent account, where 1.00 is one US cent): money
    figures without it are ambiguous by a factor of 100. "" when the broker cannot say right now.

    Asked once per broker and remembered (an account does not change currency), and never for longer
    than CURRENCY_TIMEOUT_S: /trades and /metrics read the store and must not wait on a broker outage."""
    broker = getattr(service, "broker", None)
    if broker is None or not hasattr(broker, "account_info"):
        return ""
    try:
        cached = _currency.get(broker)
    except TypeError:  # not weak-referenceable: just ask every time
        cached = None
    if cached:
        return cached
    try:
        info = await asyncio.wait_for(asyncio.to_thread(broker.account_info), CURRENCY_TIMEOUT_S)
    except Exception as e:  # noqa: BLE001 - a missing unit must not cost the trader the whole card
        log.info("account currency unavailable: %s", type(e).__name__)
        return ""
    cur = getattr(info, "currency", "")
    if not isinstance(cur, str) or not cur:
        return ""
    with contextlib.suppress(TypeError):
        _currency[broker] = cur
    return cur


def entries_blocked(service: Any) -> str | None:
    """Core's one-line reason why an Approve would be refused now (pause, emergency, auto-disable)."""
    notifier = getattr(service, "notifier", None)
    check = getattr(notifier, "entries_blocked", None)
    if check is None:
        return None
    try:
        reason = check()
    except Exception:  # noqa: BLE001 - core already refuses approvals it cannot vet; the card just says less
        log.exception("entries_blocked failed")
        return None
    return reason if isinstance(reason, str) and reason else None


def outcome_symbol(outcome: Any) -> str | None:
    proposal = getattr(outcome, "proposal", None)
    return getattr(outcome, "symbol", None) or getattr(proposal, "symbol", None)


def said(result: Any, default: str) -> str:
    """Prefer core's own words (it knows e.g. 'already paused'); fall back to a standard line."""
    if isinstance(result, str) and result:
        return result
    msg = getattr(result, "message", None)
    return msg if isinstance(msg, str) and msg else default
