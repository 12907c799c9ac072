"""The commands that change trading, and the taps that answer cards: /close, /pause, /resume, /emergency,
their Yes/Cancel confirmations, and Approve/Reject.

Split from `bot.commands` (the router: parsing, authorization gate, error guard, /scalp and its card).
A confirm tap is judged on the service clock (the replay clock in paper runs) and an expired or garbled
button replaces the stale card, so an old tap cannot be tried again. `ControlCommands` is a mixin of
`CommandRouter` and uses its `service`, `cfg`, `_digits` and `_int`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot import confirmations, presenter
from bot import service_facts as facts
from bot.command_spec import ACTIONS, USAGE
from bot.command_spec import clip as _clip
from bot.command_spec import maybe_await as _maybe
from bot.replies import Button, Reply, parse_payload

log = logging.getLogger(__name__)


class ControlCommands:
    """The trading-control handlers and button taps of `CommandRouter` (see the module docstring)."""

    def _clock(self) -> Any:
        return confirmations.service_clock(self.service)

    def _check_confirmation(self, check: Callable[..., confirmations.Check], ref: str) -> confirmations.Check:
        """Judge a confirm tap on the service clock (the replay clock in paper runs), like proposals."""
        clock = self._clock()
        speed = float(getattr(clock, "speed", 1.0) or 1.0)
        result = check(ref, float(clock.now()), confirmations.window_seconds(self.cfg, clock), speed)
        if result.status != "ok":
            log.info("refused %s confirmation %r", result.status, _clip(ref, 60))
        return result

    async def _close(self, user_id: Any, args: list[str]) -> Reply:
        ticket = self._int(args[0], 1, 2**63 - 1) if len(args) == 1 else None
        if ticket is None:
            return Reply(text=USAGE["close"], kind="usage")
        self.service.authorize(user_id, "close")
        rows = await _maybe(self.service.status())
        match = next((r for r in rows if getattr(getattr(r, "trade", r), "ticket", None) == ticket), None)
        if match is None:
            return Reply(text=f"No open trade with ticket {ticket}. See /status.", kind="error")
        trade = getattr(match, "trade", match)
        desc = f"#{ticket} {trade.symbol} {trade.direction.value} {trade.volume:g} lot"
        return Reply(
            text=f"Close {desc} at market now?",
            buttons=[[Button(f"Yes, close #{ticket}", confirmations.close_payload(ticket, self._clock().now()), "danger"),
                      Button("Cancel", "x:close")]],
        )

    async def _pause(self, user_id: Any, args: list[str]) -> Reply:
        res = await _maybe(self.service.pause(user_id))
        return Reply(text=facts.said(res, "⏸ Paused: no new trades until /resume. Open trades are still managed."))

    async def _resume(self, user_id: Any, args: list[str]) -> Reply:
        res = await _maybe(self.service.resume(user_id))
        return Reply(text=facts.said(res, "▶️ Resumed: new trades allowed."))

    async def _emergency(self, user_id: Any, args: list[str]) -> Reply:
        self.service.authorize(user_id, "emergency")
        return Reply(
            text="🚨 Emergency stop: close ALL open range scalps at market and pause trading?",
            buttons=[[Button("Yes, close all", confirmations.emergency_payload(self._clock().now()), "danger"),
                      Button("Cancel", "x:emergency")]],
        )

    # ---------------------------------------------------------------- buttons
    async def _dispatch_callback(self, payload: str, user_id: Any) -> Reply:
        parsed = parse_payload(payload)
        if parsed is None:
            log.warning("garbage callback payload from user %s: %r", user_id, _clip(str(payload), 80))
            return _invalid_button()
        kind, ref = parsed
        if kind in ("a", "r"):
            fn = self.service.approve if kind == "a" else self.service.reject
            outcome = await fn(ref, user_id)
            text = presenter.outcome_text(outcome, self._digits(facts.outcome_symbol(outcome)))
            keep = ref if kind == "r" else None
            return Reply(text=text, edit=True, keep_buttons_except=keep, toast=text.splitlines()[0][:190])
        if kind == "c":
            self.service.authorize(user_id, "close")
            check = self._check_confirmation(confirmations.check_close, ref)
            if check.status == "malformed" or check.ticket is None:
                return _invalid_button()
            ticket = check.ticket
            if check.status == "expired":
                return _expired(f"/close {ticket}")
            outcome = await self.service.close_trade(ticket, user_id)
            text = presenter.outcome_text(outcome)
            return Reply(text=text, edit=True, toast=text.splitlines()[0][:190])
        if kind == "e":
            self.service.authorize(user_id, "emergency")
            check = self._check_confirmation(confirmations.check_emergency, ref)
            if check.status == "malformed":
                return _invalid_button()
            if check.status == "expired":
                return _expired("/emergency")
            res = await self.service.emergency(user_id)
            text = facts.said(res, "🚨 Emergency stop done: positions closed, trading paused.")
            return Reply(text=text, edit=True, toast=text[:190])
        # Cancel wipes the confirmation: only someone who may do the action may call it off
        self.service.authorize(user_id, ACTIONS.get(ref, "read"))
        return Reply(text="Cancelled.", edit=True, toast="Cancelled.")


def _expired(command: str) -> Reply:
    """Replace the stale card (its buttons go with it) so the same old tap cannot be tried again."""
    text = confirmations.expired_text(command)
    return Reply(text=text, kind="error", edit=True, toast=text)


def _invalid_button() -> Reply:
    text = "That button is not valid any more. Run the command again."
    return Reply(text=text, kind="error", ephemeral=True, toast=text)
