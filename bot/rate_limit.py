"""Per-user rate limit for the commands that cost analysis work (/scalp, /backtest).

One trader (or a stuck client) repeating /scalp must not starve everyone else: each user gets a small
burst, then one request per `interval` seconds; beyond that the answer is an instant, polite refusal that
says when to try again. Commands that protect money (/status, /close, /pause, /resume, /emergency) and
button taps are never limited: they do no analysis work and must always get through.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

LIMITED = {"scalp": (4, 5.0), "backtest": (2, 30.0)}  # command -> (burst, seconds per extra request)


@dataclass
class RateLimiter:
    limits: dict[str, tuple[int, float]] = field(default_factory=lambda: dict(LIMITED))
    now: Callable[[], float] = time.monotonic
    _buckets: dict[tuple, tuple[float, float]] = field(default_factory=dict)  # (user, cmd) -> (tokens, at)

    def retry_after(self, user_id, command: str) -> float:
        """0 when `command` may run now (and count it), else the seconds until it may."""
        if command not in self.limits:
            return 0.0
        burst, interval = self.limits[command]
        key = (user_id, command)
        t = self.now()
        tokens, at = self._buckets.get(key, (float(burst), t))
        tokens = min(float(burst), tokens + (t - at) / interval)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, t)
            return 0.0
        self._buckets[key] = (tokens, t)
        if len(self._buckets) > 10_000:  # forget the oldest users (bounded memory under a flood of ids)
            for k in list(self._buckets)[:1000]:
                del self._buckets[k]
        return (1.0 - tokens) * interval


    def refund(self, user_id, command: str) -> None:
        """Give back the request a usage line or an unknown symbol answered without any analysis work."""
        if (key := (user_id, command)) in self._buckets:
            tokens, at = self._buckets[key]
            self._buckets[key] = (min(float(self.limits[command][0]), tokens + 1.0), at)


def refusal_text(command: str, wait: float) -> str:
    secs = max(1, math.ceil(wait))
    return (f"You're sending /{command} faster than I can usefully answer: please try again in {secs} s. "
            "/status, /close, /pause and /emergency always work.")
