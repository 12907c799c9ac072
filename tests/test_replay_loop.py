"""The replay driver runs live coroutines exactly as a Task on an event loop would, only cheaper."""
from __future__ import annotations

import asyncio

import pytest

from core.backtest.replay_loop import ReplayLoop


@pytest.fixture
def loop():
    lp = ReplayLoop()
    yield lp
    lp.close()


def test_a_coroutine_that_never_waits_runs_inline_with_the_loop_running(loop):
    calls = []

    def work(x):
        calls.append(x)
        return x * 2

    async def coro():
        assert asyncio.get_running_loop() is loop  # what to_thread needs
        a = await asyncio.to_thread(work, 2)
        b = await asyncio.to_thread(work, 5)
        return a + b

    assert loop.drive(coro()) == 14
    assert calls == [2, 5]
    with pytest.raises(RuntimeError):  # not left running afterwards
        asyncio.get_running_loop()


def test_exceptions_from_executor_calls_and_the_coroutine_propagate(loop):
    def boom():
        raise ValueError("broker said no")

    async def caught():
        try:
            await asyncio.to_thread(boom)
        except ValueError as e:
            return f"caught {e}"

    async def uncaught():
        await asyncio.to_thread(boom)

    assert loop.drive(caught()) == "caught broker said no"
    with pytest.raises(ValueError, match="broker said no"):
        loop.drive(uncaught())


def test_a_real_wait_goes_through_the_loop(loop):
    async def coro():
        await asyncio.sleep(0)  # a bare yield
        t = loop.time()
        await asyncio.sleep(0.02)  # a pending future
        fut = loop.create_future()
        loop.call_soon(fut.set_exception, KeyError("late"))
        with pytest.raises(KeyError, match="late"):  # the loop delivered the future's exception
            await fut
        return loop.time() - t

    assert loop.drive(coro()) >= 0.015


def test_a_task_created_inside_runs_on_the_same_loop(loop):
    async def child():
        await asyncio.sleep(0.001)
        return 7

    async def coro():
        return await asyncio.create_task(child())

    assert loop.drive(coro()) == 7


def test_refused_inside_a_running_loop_like_run_until_complete(loop):
    async def inner():
        return 1

    async def outer():
        with pytest.raises(RuntimeError, match="another loop is running"):
            loop.drive(inner())
        return asyncio.get_running_loop()

    outer_loop = asyncio.new_event_loop()
    try:
        assert outer_loop.run_until_complete(outer()) is outer_loop  # the outer loop's state is untouched
    finally:
        outer_loop.close()
