"""The kill switch: pause / resume / emergency, plus the ErrorHandler's auto-disable.

It only ever blocks NEW entries. Exits, breakeven moves and monitoring keep running whatever the
state, because an unmonitored open position is the most dangerous thing the bot can leave behind.
`emergency` blocks entries first and then the caller (the service) closes every range-scalp
position: blocking first means no new trade can slip in while positions are being closed.
While the emergency stays on, the monitor closes any range scalp it still finds open (one whose order
landed after the emergency, e.g. an unconfirmed order filling late).

The state is persisted in the store, so a pause or an auto-disable survives restarts until a human
calls `resume`. The config can also block entries (`kill_switch.enabled=false` or
`emergency_disable=true`); that cannot be resumed from chat, only by editing the config.
"""
from __future__ import annotations

import logging

from core.domain.clock import Clock, SystemClock
from core.domain.wording import actor_label
from core.store import KillSwitchState, Store

log = logging.getLogger(__name__)


class KillSwitch:
    def __init__(self, store: Store, cfg=None, clock: Clock | None = None):
        """`cfg` is the AppConfig (or anything with a `kill_switch` section, or the section itself)."""
        self._store = store
        section = getattr(cfg, "kill_switch", cfg)
        self._cfg_enabled = bool(getattr(section, "enabled", True))
        self._cfg_emergency = bool(getattr(section, "emergency_disable", False))
        self._clock = clock or store.clock or SystemClock()

    def state(self) -> KillSwitchState:
        return self._store.kill_switch.get()

    def block_reason(self) -> str | None:
        """Why new entries are blocked (one line for the trader), or None if they are allowed."""
        if self._cfg_emergency:
            return "Emergency disable is set in the config (kill_switch.emergency_disable)."
        if not self._cfg_enabled:
            return "Trading is switched off in the config (kill_switch.enabled is false)."
        s = self.state()
        who = f" by {actor_label(s.by)}" if s.by else ""
        why = f": {s.reason}" if s.reason and s.reason not in ("paused", "emergency stop") else ""
        if s.emergency:
            return f"Emergency stop{who}{why}. Use /resume to allow new trades."
        if s.auto_disabled:
            return f"New entries were auto-disabled{why}. A human must /resume."
        if s.paused:
            return f"Trading is paused{who}{why}. Use /resume to allow new trades."
        return None

    def entries_allowed(self) -> bool:
        return self.block_reason() is None

    def pause(self, by: str | int, reason: str = "") -> KillSwitchState:
        def fn(s: KillSwitchState) -> KillSwitchState:
            return s.model_copy(update={"paused": True, "by": str(by), "at": self._clock.now(),
                                        "reason": reason or s.reason or "paused"})
        _, after = self._store.kill_switch.update(fn, "pause", str(by), reason)
        log.warning("kill switch: entries paused by %s (%s)", actor_label(by), reason or "no reason given")
        return after

    def resume(self, by: str | int) -> KillSwitchState:
        """Clear pause, emergency and auto-disable. Errors before this moment stop counting toward auto-disable."""
        now = self._clock.now()

        def fn(s: KillSwitchState) -> KillSwitchState:
            return KillSwitchState(resumed_by=str(by), resumed_at=now, by=str(by), at=now)
        before, after = self._store.kill_switch.update(fn, "resume", str(by))
        if before.blocking:
            log.warning("kill switch: entries resumed by %s", actor_label(by))
        return after

    def emergency(self, by: str | int, reason: str = "") -> KillSwitchState:
        """Block entries immediately (emergency + paused). The caller then closes all range-scalp positions."""
        def fn(s: KillSwitchState) -> KillSwitchState:
            return s.model_copy(update={"paused": True, "emergency": True, "by": str(by), "at": self._clock.now(),
                                        "reason": reason or "emergency stop"})
        _, after = self._store.kill_switch.update(fn, "emergency", str(by), reason)
        log.critical("kill switch: EMERGENCY by %s (%s)", actor_label(by), reason or "no reason given")
        return after

    def auto_disable(self, reason: str, by: str = "error_handler") -> bool:
        """Switch entries off because of error rates. Returns True only if it was not already off."""
        def fn(s: KillSwitchState) -> KillSwitchState:
            if s.auto_disabled:
                return s
            return s.model_copy(update={"auto_disabled": True, "by": by, "at": self._clock.now(), "reason": reason})
        before, _ = self._store.kill_switch.update(fn, "auto_disable", by, reason)
        newly = not before.auto_disabled
        if newly:
            log.critical("kill switch: new entries AUTO-DISABLED: %s", reason)
        return newly
