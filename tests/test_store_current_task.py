"""`core.store.db._current_task` answers what `asyncio.current_task()` answered (None where it raised: no
running loop), without the RuntimeError: outside a loop, in a task, in a loop callback outside any task, and in a
thread running its own loop."""
from __future__ import annotations

import asyncio
import threading

from core.store.db import _current_task


def _old() -> object | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


def test_outside_a_loop():
    assert _current_task() is None and _old() is None


def test_in_a_task_and_in_a_callback_outside_any_task():
    async def main():
        seen = [(_current_task(), _old())]
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        loop.call_soon(lambda: done.set_result((_current_task(), _old())))
        seen.append(await done)
        return seen, asyncio.current_task()

    (in_task, in_callback), task = asyncio.run(main())
    assert in_task == (task, task)
    assert in_callback == (None, None)


def test_in_a_thread_with_its_own_loop():
    out = {}

    def run():
        async def main():
            out["got"] = (_current_task(), _old(), asyncio.current_task())
        asyncio.run(main())

    th = threading.Thread(target=run)
    th.start()
    th.join()
    got, old, task = out["got"]
    assert got is task and old is task and task is not None
    assert _current_task() is None
