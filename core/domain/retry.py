"""The one retry loop: `max_retries` is the TOTAL number of attempts, everywhere.

Why one loop: the config's `error_handling` policies used to mean different things in different places
(extra tries here, total tries there) and loops nested inside loops (a lost connection cost about 75 s
of sleeps). `ErrorHandler.run_with_policy(_sync)` (core.ops) and the MT5 adapter (core.brokers, which
may not import ops) both run this function, so a policy reads the same wherever it is applied, and the
worst-case wall time of an operation is a formula of the config (`worst_case_seconds`).

Sleeps are injected, so tests drive it with a fake clock.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def attempts_of(max_retries: int | None) -> int:
    """`max_retries` read as total attempts; at least one."""
    return max(1, int(max_retries or 0))


def worst_case_seconds(max_retries: int | None, interval: float) -> float:
    """Sleeps between attempts only: (attempts - 1) x interval."""
    return (attempts_of(max_retries) - 1) * float(interval)


def run_sync(
    max_retries: int | None,
    interval: float,
    fn: Callable[[int], T],
    *,
    sleep: Callable[[float], object],
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    on_retry: Callable[[int, BaseException], None] | None = None,
) -> T:
    """`fn(attempt_number)` up to `attempts_of(max_retries)` times, `interval` seconds apart.

    The last failure propagates. An exception outside `retry_on` propagates at once (e.g. a refusal that
    proves a resend cannot help, or an order whose outcome is unknown and must never be resent)."""
    n = attempts_of(max_retries)
    for i in range(n):
        try:
            return fn(i)
        except retry_on as e:
            if i + 1 >= n:
                raise
            if on_retry is not None:
                on_retry(i, e)
            if interval > 0:
                sleep(interval)
    raise AssertionError("unreachable")  # pragma: no cover


async def run_async(
    max_retries: int | None,
    interval: float,
    fn: Callable[[int], Awaitable[T]],
    *,
    sleep: Callable[[float], Awaitable[object]],
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    on_retry: Callable[[int, BaseException], None] | None = None,
) -> T:
    """`run_sync` for coroutines (the ErrorHandler's `run_with_policy`, exit orders)."""
    n = attempts_of(max_retries)
    for i in range(n):
        try:
            return await fn(i)
        except retry_on as e:
            if i + 1 >= n:
                raise
            if on_retry is not None:
                on_retry(i, e)
            if interval > 0:
                await sleep(interval)
    raise AssertionError("unreachable")  # pragma: no cover
