"""A platform-neutral progress channel: long commands report, adapters show one message and edit it.

The command layer only knows `ProgressFn = async (text) -> None`; each adapter decides what a progress
text becomes (Telegram: sendMessage then editMessageText; Discord: edits of the deferred response;
console: one printed line each). `ProgressRelay` bridges the worker thread that does the CPU work to
that async sink: the worker calls `relay(done, total)` and never waits for the chat, updates are
throttled (chat APIs rate-limit edits, and a trader does not need 200 of them), coalesced (only the
latest text is worth sending when the chat is slow) and delivered in order on the event loop.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

ProgressFn = Callable[[str], Awaitable[None]]

MIN_INTERVAL_S = 2.0  # at most one edit every 2 s ...
STEP_PCT = 10  # ... and only when the figure has moved by 10 points


class Cancelled(Exception):
    """Raised inside the worker at its next progress report once the command was cancelled (shutdown):
    a thread cannot be killed, but a backtest that reports progress can be stopped this way."""


class ProgressRelay:
    """Turns `progress(done, total)` calls from a worker thread into throttled texts on `sink`."""

    def __init__(self, sink: ProgressFn | None, label: str, *, min_interval: float = MIN_INTERVAL_S,
                 step_pct: int = STEP_PCT, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._sink = sink
        self.label = label
        self.min_interval = min_interval
        self.step_pct = step_pct
        self._monotonic = monotonic
        self._loop = asyncio.get_running_loop()
        self._guard = threading.Lock()  # the worker thread and the loop both read the throttle state
        self._last_pct = 0
        self._last_at = monotonic()
        self._pending: str | None = None
        self._task: asyncio.Task | None = None
        self._closed = False
        self._cancelled = threading.Event()
        self.sent: list[str] = []  # what reached the sink, in order (for logs and tests)

    def text(self, pct: int, done: int | None = None, total: int | None = None) -> str:
        bars = f" ({done}/{total} bars)" if done is not None and total else ""
        return f"⏳ {self.label}… {pct}%{bars}"

    async def start(self) -> None:
        """Post the 0% message before the worker starts, so the trader knows the command was taken."""
        await self._send(self.text(0))

    def __call__(self, done: int, total: int) -> None:
        """Called from the worker thread; never blocks on the chat."""
        if self._cancelled.is_set():
            raise Cancelled("cancelled")
        if self._sink is None or total <= 0:
            return
        pct = max(0, min(100, int(100 * done / total)))
        now = self._monotonic()
        with self._guard:
            if pct >= 100 or pct - self._last_pct < self.step_pct or now - self._last_at < self.min_interval:
                return  # 100% is said by finish(), with the outcome
            self._last_pct, self._last_at = pct, now
        try:
            self._loop.call_soon_threadsafe(self._offer, self.text(pct, done, total))
        except RuntimeError:  # the loop is gone (shutdown): nobody is left to tell
            pass

    def _offer(self, text: str) -> None:
        if self._closed:
            return
        self._pending = text  # a newer figure replaces one not sent yet
        if self._task is None or self._task.done():
            self._task = self._loop.create_task(self._drain())

    async def _drain(self) -> None:
        while self._pending is not None:
            text, self._pending = self._pending, None
            await self._send(text)

    def cancel(self) -> None:
        """Stop the worker at its next progress report (its result is no longer awaited)."""
        self._cancelled.set()

    async def finish(self, text: str) -> None:
        """The last word on the progress message (done / failed), after any update still in flight."""
        self._closed = True
        self._pending = None
        if self._task is not None:
            await asyncio.shield(self._task)
        await self._send(text)

    async def _send(self, text: str) -> None:
        if self._sink is None:
            return
        try:
            await self._sink(text)
            self.sent.append(text)
        except asyncio.CancelledError:
            raise
        except Exception:  # a chat hiccup must not fail the backtest it reports on
            log.warning("progress update failed: %r", text, exc_info=True)


class PostThenEdit:
    """A ProgressFn for chats with editable messages: the first text is posted, later ones edit it."""

    def __init__(self, post: Callable[[str], Awaitable[Any]], edit: Callable[[Any, str], Awaitable[Any]]) -> None:
        self._post = post
        self._edit = edit
        self.handle: Any = None

    async def __call__(self, text: str) -> None:
        if self.handle is None:
            self.handle = await self._post(text)  # None (post failed): the next text tries to post again
        else:
            await self._edit(self.handle, text)
