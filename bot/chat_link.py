"""Keeping one chat platform connected: a chat that cannot be reached at start-up (a VPS that booted
before its network, a DNS blip) is tried again in the background, 5 s doubling to 5 min, instead of
being dropped until the next restart while the trader's phone silently gets no alerts.

A rejected token is not retried: no amount of waiting fixes a config error, so it is said once, with
the fix. Each give-up-for-now and each (re)connection is said to the operator, and the state goes to
the service for /health (`TradingService.set_chat_link`).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

FIRST_DELAY_S = 5.0
MAX_DELAY_S = 300.0
STABLE_S = 60.0  # a connection that lasted this long resets the back-off; a flapping one keeps doubling it

# `open()` connects (raising on failure, after cleaning up its half-open client) and returns either
# None (connected; the platform's library keeps the connection up itself) or `serve`, an awaitable
# that runs while connected and raises when the connection is lost for good.
Opener = Callable[[], Awaitable[Callable[[], Awaitable[None]] | None]]


def _wait_text(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


class ChatLink:
    def __init__(self, name: str, open_: Opener, *, rejected: tuple[type[BaseException], ...], fix: str,
                 say: Callable[[str], None], report: Callable[..., Any] | None = None,
                 first_delay: float = FIRST_DELAY_S, max_delay: float = MAX_DELAY_S,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._open = open_
        self._rejected = rejected
        self.fix = fix
        self._say = say
        self._report = report
        self.first_delay = first_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._monotonic = monotonic
        self.state = "connecting"
        self.since = time.time()
        self.attempts = 0
        self.first_try = asyncio.Event()  # the first attempt is over, whatever its outcome
        self.task: asyncio.Task | None = None

    def start(self, delay: float = 0.0) -> asyncio.Task:
        """Connect in the background (after `delay`), retrying until connected, rejected or stopped."""
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run(delay), name=f"chat-link-{self.name.lower()}")
        return self.task

    def lost(self, error: BaseException) -> None:
        """It failed after `open()` said it was up (e.g. Telegram polling could not start): try again."""
        if self._is_rejection(error):
            self._reject(error)
            return
        self._retrying(error, self.first_delay, "could not start")
        self.start(self.first_delay)

    async def stop(self) -> None:
        """Stop trying (the runner closes a connected client itself, last, after the final alerts)."""
        if self.task is not None and not self.task.done() and self.state != "connected":
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                me = asyncio.current_task()
                if me is not None and me.cancelling():
                    raise  # the caller (the runner's stop) was cancelled itself: don't swallow that
            except Exception:  # noqa: BLE001 - a failed attempt at stop time has nothing left to say
                log.debug("%s link ended with an error while stopping", self.name, exc_info=True)

    @property
    def alive(self) -> bool:
        """Connected or still trying: worth keeping the process up for (not a rejected token)."""
        return self.state != "rejected"

    # ---------------------------------------------------------------- the loop
    async def _run(self, delay: float) -> None:
        while True:
            if delay:
                await self._sleep(delay)
            self.attempts += 1
            try:
                serve = await self._open()
            except Exception as e:  # noqa: BLE001 - anything but a rejected token is worth another try
                if self._is_rejection(e):
                    self._reject(e)
                    return
                delay = min(max(delay * 2, self.first_delay), self.max_delay)
                self._retrying(e, delay)
                continue
            finally:
                self.first_try.set()
            self._connected()
            backoff, delay = delay, 0.0
            if serve is None:
                return
            up_at = self._monotonic()
            try:
                await serve()
                return  # closed by the runner
            except Exception as e:  # noqa: BLE001
                if self._is_rejection(e):
                    self._reject(e)
                    return
                # a link that logs in and drops again at once must not be retried every 5 s for ever
                stable = self._monotonic() - up_at >= STABLE_S
                delay = self.first_delay if stable else min(max(backoff * 2, self.first_delay), self.max_delay)
                self._retrying(e, delay, "connection lost")

    def _is_rejection(self, e: BaseException) -> bool:
        return isinstance(e, self._rejected)

    def _set(self, state: str, detail: str = "") -> None:
        if state != self.state:
            self.since = time.time()
        self.state = state
        if self._report is not None:
            with contextlib.suppress(Exception):  # /health is a nicety; the link must keep going
                self._report(self.name, state, detail, since=self.since)

    def _retrying(self, e: BaseException, delay: float, what_happened: str = "could not connect") -> None:
        what = type(e).__name__
        first = self.state != "retrying"
        self._set("retrying", f"{what}, next try in {_wait_text(delay)}")
        (log.error if first else log.warning)("%s %s (%s); next try in %.0f s", self.name, what_happened, what, delay)
        tail = " Alerts go to the other chats meanwhile." if first else ""
        self._say(f"{self.name} {what_happened} ({what}); trying again in {_wait_text(delay)}.{tail}")

    def _connected(self) -> None:
        was = self.state
        self._set("connected")
        if was == "retrying":
            log.warning("%s connected after %d attempts", self.name, self.attempts)
            self._say(f"{self.name} connected: its alerts and commands are back on.")

    def _reject(self, e: BaseException) -> None:
        what = type(e).__name__
        self._set("rejected", f"{what}: {self.fix}")
        log.error("%s rejected the token (%s): %s", self.name, what, self.fix)
        self._say(f"{self.name} rejected the token ({what}): {self.fix}. Continuing without {self.name}.")
