"""Injected clocks, so that live trading, replays and tests all read time the same way.

Everything in core that asks "what time is it" takes a Clock; nothing calls time.time() directly.
That is what makes the data-freshness checks and the no-look-ahead tests deterministic.
"""
from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Current time in epoch seconds (UTC)."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class FixedClock:
    """A clock that moves only when told: for tests and step-by-step replays."""

    def __init__(self, start: float) -> None:
        self._t = float(start)

    def now(self) -> float:
        return self._t

    def set(self, t: float) -> None:
        self._t = float(t)

    def advance(self, seconds: float) -> None:
        self._t += float(seconds)
