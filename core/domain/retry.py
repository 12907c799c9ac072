"""The one retry loop: `max_retries` is the TOTAL number of attempts, everywhere.

Why one loop: the config's `error_handling` policies used to mean different things in different places
(extra tries here, total tries there) and loops nested inside loops (a lost connection cost about 75 s
of sleeps). `ErrorHandler.run_with_policy(_sync)` (core.ops), the exit orders, the monitor's reconnect
and the MT5 adapter (core.brokers, which may not import ops: its reconnect, its per-retcode order loop
and its look-ups of an unconfirmed order) all run these two functions, so a policy reads the same
wherever it is applied, and the worst-case wall time of an operation is a formula of the config
(`worst_case_seconds`). `tests/test_one_retry_loop.py` fails if a hand-written retry loop appears in the
adapter or the monitor again.

The order loop needs more than "try n times": which failure may be retried and within which budget
(`retry_if`), how long to wait for it (`wait`), a resend that is the same attempt (`counts`, at most
`max_free` of them: a fallback filling mode, a request proven never delivered), and a hook that runs
before every resend (`before_retry`): it proves the broker did not act (positions and deals), and returns
the broker's result instead when it did. Sleeps are injected, so tests drive it with a fake clock.
"""
from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def attempts_of(max_retries: int | None) -> int:
    """`max_retries` read as total attempts; at least one."""
    return max(1, int(max_retries or 0))


def worst_case_seconds(max_retries: int | None, interval: float) -> float:
    """Sleeps between attempts only: (attempts - 1) x interval."""
    return (attempts_of(max_retries) - 1) * float(interval)


class _Step:
    """What the loop does after one failure; shared by `run_sync` and `run_async` so they cannot drift."""

    def __init__(self, max_retries, interval, retry_if, wait, counts, max_free) -> None:
        self.n = attempts_of(max_retries)
        self.calls = self.n + max(0, int(max_free))  # a hard bound on calls, free resends included
        self.interval, self.retry_if, self.wait, self.counts = float(interval or 0.0), retry_if, wait, counts
        self.max_free, self.free, self.i = max(0, int(max_free)), 0, 0

    def next(self, e: BaseException) -> float | None:
        """Seconds to sleep before the next attempt, or None: give up (the caller re-raises `e`)."""
        nxt = self.i + 1
        if self.counts is not None and not self.counts(e) and self.free < self.max_free:
            self.free, nxt = self.free + 1, self.i  # the same attempt again (its request never acted)
        if nxt >= self.n or (self.retry_if is not None and not self.retry_if(e, nxt)):
            return None
        self.i = nxt
        return self.interval if self.wait is None else float(self.wait(e))


def run_sync(
    max_retries: int | None,
    interval: float,
    fn: Callable[[int], T],
    *,
    sleep: Callable[[float], object],
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    on_retry: Callable[[int, BaseException], None] | None = None,
    retry_if: Callable[[BaseException, int], bool] | None = None,
    wait: Callable[[BaseException], float] | None = None,
    counts: Callable[[BaseException], bool] | None = None,
    max_free: int = 0,
    before_retry: Callable[[BaseException], T | None] | None = None,
) -> T:
    """`fn(attempt_number)` up to `attempts_of(max_retries)` times, `interval` seconds apart.

    The last failure propagates. An exception outside `retry_on` propagates at once (e.g. a refusal that
    proves a resend cannot help, or an order whose outcome is unknown and must never be resent).
    `retry_if(e, next_attempt)`: False = `e` is not retried (its own budget is spent); `wait(e)`: the
    sleep before retrying `e` (default `interval`); `counts(e)` False: the retry repeats the same attempt
    number (at most `max_free` times per run); `before_retry(e)`, after the sleep: a value = the operation
    is done (returned as is), None = go on, an exception = stop with it."""
    step = _Step(max_retries, interval, retry_if, wait, counts, max_free)
    for _ in range(step.calls):
        i = step.i
        try:
            return fn(i)
        except retry_on as e:
            pause = step.next(e)
            if pause is None:
                raise
            if on_retry is not None:
                on_retry(i, e)
            if pause > 0:
                sleep(pause)
            if before_retry is not None and (done := before_retry(e)) is not None:
                return done
    raise AssertionError("unreachable: every attempt either returns or raises")  # pragma: no cover


async def run_async(
    max_retries: int | None,
    interval: float,
    fn: Callable[[int], Awaitable[T]],
    *,
    sleep: Callable[[float], Awaitable[object]],
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    on_retry: Callable[[int, BaseException], None] | None = None,
    retry_if: Callable[[BaseException, int], bool] | None = None,
    wait: Callable[[BaseException], float] | None = None,
    counts: Callable[[BaseException], bool] | None = None,
    max_free: int = 0,
    before_retry: Callable[[BaseException], T | None | Awaitable[T | None]] | None = None,
) -> T:
    """`run_sync` for coroutines (the ErrorHandler's `run_with_policy`, exit orders, the monitor's
    reconnect); `before_retry` may be a coroutine function."""
    step = _Step(max_retries, interval, retry_if, wait, counts, max_free)
    for _ in range(step.calls):
        i = step.i
        try:
            return await fn(i)
        except retry_on as e:
            pause = step.next(e)
            if pause is None:
                raise
            if on_retry is not None:
                on_retry(i, e)
            if pause > 0:
                await sleep(pause)
            if before_retry is not None:
                done = before_retry(e)
                if inspect.isawaitable(done):
                    done = await done
                if done is not None:
                    return done
    raise AssertionError("unreachable: every attempt either returns or raises")  # pragma: no cover
