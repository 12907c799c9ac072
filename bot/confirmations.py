"""Confirmation buttons that lapse: `/close` and `/emergency` ask first, and the answer must come soon.

A confirm button carries its issue time (`c:<ticket>:<epoch>`, `e:<epoch>`) because nothing else remembers
it: the card outlives restarts, and a trader scrolling back days later must not close a trade (or
everything) with a stale tap. The window is the proposal window (`execution.proposal_expiry_seconds`)
measured on the service clock and stretched by its replay speed, exactly like proposals in core, so a
paper replay at speed N does not lapse a confirmation after 120/N real seconds. The stamp is not
secret (it need not be: core still authorizes the tapper and refuses unknown tickets); a forged stamp
can only shorten the window, since one from the future is refused as well.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from core.domain.clock import Clock, SystemClock

DEFAULT_WINDOW_SECONDS = 120.0
# the same clock stamps and checks, so only rounding needs slack; anything further ahead is forged
FUTURE_SLACK_SECONDS = 2.0
_CLOSE_RE = re.compile(r"^(?P<ticket>[1-9]\d{0,18})(?::(?P<at>\d{1,12}))?$")
_EMERGENCY_RE = re.compile(r"^(?:go|(?P<at>\d{1,12}))$")

Status = Literal["ok", "expired", "malformed"]


@dataclass(frozen=True)
class Check:
    status: Status
    ticket: int | None = None  # /close only: the ticket named by the button (also when expired)


def service_clock(service: Any) -> Clock:
    """The service's clock (replay-aware); a bare system clock only for services that have none."""
    clock = getattr(service, "clock", None)
    return clock if clock is not None and callable(getattr(clock, "now", None)) else SystemClock()


def window_seconds(cfg: Any, clock: Clock) -> float:
    execution = getattr(cfg, "execution", None)
    base = float(getattr(execution, "proposal_expiry_seconds", DEFAULT_WINDOW_SECONDS) or DEFAULT_WINDOW_SECONDS)
    return base * float(getattr(clock, "speed", 1.0) or 1.0)


def close_payload(ticket: int, now: float) -> str:
    return f"c:{ticket}:{int(now)}"


def emergency_payload(now: float) -> str:
    return f"e:{int(now)}"


def _fresh(at: str | None, now: float, window: float, slack: float) -> bool:
    if at is None:  # an old-format button (before stamps): its age is unknown, so it counts as expired
        return False
    issued = int(at)
    return issued <= now + slack and now - issued < window


def check_close(ref: str, now: float, window: float, speed: float = 1.0) -> Check:
    m = _CLOSE_RE.fullmatch(ref)
    if m is None:
        return Check("malformed")
    ticket = int(m["ticket"])
    if ticket > 2**63 - 1:
        return Check("malformed")
    ok = _fresh(m["at"], now, window, FUTURE_SLACK_SECONDS * speed)
    return Check("ok" if ok else "expired", ticket)


def check_emergency(ref: str, now: float, window: float, speed: float = 1.0) -> Check:
    m = _EMERGENCY_RE.fullmatch(ref)
    if m is None:
        return Check("malformed")
    return Check("ok" if _fresh(m["at"], now, window, FUTURE_SLACK_SECONDS * speed) else "expired")


def expired_text(command: str) -> str:
    return f"This confirmation expired; send {command} again."
