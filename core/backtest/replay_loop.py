"""The event loop a replay drives the live coroutines on.

Live, the monitor and the execution engine are coroutines on the bot's event loop, and their broker
calls go to a worker thread (`asyncio.to_thread`) so a slow MT5 terminal cannot stall the loop. In a
replay the broker is the in-process PaperBroker on a clock that does not move during a call, and
nothing else runs on the loop (the replay's notifier has no alert sinks), so both hops are pure cost:
together they were about a quarter of the simulation leg. The same coroutines run here, with the same
calls in the same order, and anything that really waits still goes through a real asyncio loop.
"""
from __future__ import annotations

import asyncio
import contextvars
from asyncio import events
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def inline(func, /, *args):
    """`asyncio.to_thread(func, *args)` as a `ReplayLoop` runs it, minus the hop: the call at once, in a copy
    of the caller's context (as `to_thread` runs it), its result or exception straight back.

    `ReplayLoop.run_in_executor` already ran the call inline; what was left per broker call was the
    `to_thread` coroutine, a partial, a future and its await protocol (~1 us each, several per monitor
    cycle). The monitor and the exit executor take it as their `offload` only in a replay (core.backtest.live):
    live they keep `asyncio.to_thread`, so a slow terminal never stalls the bot's loop."""
    return contextvars.copy_context().run(func, *args)


class ReplayLoop(asyncio.SelectorEventLoop):
    """An event loop whose executor calls run inline.

    The call runs at once and its result (or exception) comes back as an already-done future, which
    the awaiting coroutine reads without yielding: no executor future, no thread-safe wake-up through
    the loop's self-pipe, no extra loop iteration. Same calls, same order, same results and exceptions.
    """

    def run_in_executor(self, executor, func, *args):
        self._check_closed()
        fut = self.create_future()
        try:
            fut.set_result(func(*args))
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting coroutine, as a worker would
            fut.set_exception(e)
        return fut

    def drive(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` to completion, stepping it directly while it does not wait.

        `run_until_complete` wraps the coroutine in a Task and spins the selector at least twice even
        when nothing waits; with the executor inline, a monitor cycle or an order never waits, so that
        was all overhead. The coroutine runs with this loop as the running loop (what `to_thread` and
        `get_running_loop` need). If it does yield a pending future (a real wait: a sleep, a lock held
        elsewhere), the loop runs until that future is done and the coroutine resumes, as a Task would
        resume it. Exceptions propagate unchanged.
        """
        self._check_closed()
        if events._get_running_loop() is not None:  # as run_until_complete: never inside a running loop
            coro.close()
            raise RuntimeError("Cannot run the event loop while another loop is running")
        send, error = coro.send, None
        try:
            while True:
                events._set_running_loop(self)
                try:
                    if error is not None:
                        fut, error = coro.throw(error), None
                    else:
                        fut = send(None)
                except StopIteration as stop:
                    return stop.value
                finally:
                    events._set_running_loop(None)
                if fut is None:  # a bare yield (asyncio.sleep(0)): let the loop turn once
                    self.run_until_complete(asyncio.sleep(0))
                    continue
                # the await protocol of asyncio futures: the waiter marks itself blocking and expects its
                # driver (normally a Task) to clear the mark and resume it once the future is done; it then
                # reads the future's result or exception itself
                if getattr(fut, "_asyncio_future_blocking", None) is not True:
                    error = RuntimeError(f"the replay driver got a bad yield: {fut!r}")
                    continue
                fut._asyncio_future_blocking = False
                try:
                    self.run_until_complete(asyncio.wait({fut}))
                except BaseException as e:  # noqa: BLE001 - e.g. KeyboardInterrupt: raised inside the coroutine
                    error = e
        finally:
            coro.close()
