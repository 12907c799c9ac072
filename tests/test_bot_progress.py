"""ProgressRelay: worker-thread progress becomes throttled, ordered, coalesced texts on the event loop."""
from __future__ import annotations

import asyncio
import threading

from bot.progress import PostThenEdit, ProgressRelay


def _pct(text: str) -> int:
    return int(text.split("… ", 1)[1].split("%", 1)[0])


async def test_throttled_by_time_and_step_from_a_worker_thread():
    now = [0.0]
    got: list[str] = []
    threads: set[str] = set()

    async def sink(text: str) -> None:
        threads.add(threading.current_thread().name)
        got.append(text)

    relay = ProgressRelay(sink, "Backtesting XAUUSDc", min_interval=2.0, step_pct=10, monotonic=lambda: now[0])
    await relay.start()
    loop = asyncio.get_running_loop()

    def worker() -> None:  # 1000 bars, 0.05 s of "time" per bar: 50 s in all
        for done in range(0, 1001):
            now[0] = done * 0.05
            relay(done, 1000)
            # let the loop deliver before the next bar (else a fast worker's updates are coalesced)
            asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(5)

    await asyncio.to_thread(worker)
    await relay.finish("✅ done")
    assert got[0] == "⏳ Backtesting XAUUSDc… 0%" and got[-1] == "✅ done"
    pcts = [_pct(t) for t in got[1:-1]]
    # time is the binding limit here (10% of the run = 5 s > 2 s): one edit per 10 points, none at 100%
    assert pcts == [10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert threads == {threading.current_thread().name}  # delivered on the loop, not the worker thread

    # a fast run (the whole of it inside 2 s): no edits between 0% and the outcome
    got.clear()
    now[0] = 100.0
    relay = ProgressRelay(sink, "Backtesting BTCUSDc", monotonic=lambda: now[0])
    await relay.start()
    await asyncio.to_thread(lambda: [relay(d, 50) for d in range(51)])
    await relay.finish("✅ done")
    assert got == ["⏳ Backtesting BTCUSDc… 0%", "✅ done"]


async def test_slow_chat_gets_only_the_latest_figure_in_order_and_failures_do_not_escape():
    got: list[str] = []
    release = asyncio.Event()

    async def slow_sink(text: str) -> None:
        if "0%" not in text and not got[1:]:
            await release.wait()  # the first edit hangs (a slow Bot API call)
        if "boom" in text:
            raise RuntimeError("chat down")
        got.append(text)

    relay = ProgressRelay(slow_sink, "Backtesting", min_interval=0.0, step_pct=10)
    await relay.start()
    await asyncio.to_thread(relay, 15, 100)  # this edit will hang in the sink
    await asyncio.sleep(0.05)
    for done in (30, 45, 60):
        await asyncio.to_thread(relay, done, 100)
    await asyncio.sleep(0.05)
    assert [t.split("… ")[-1] for t in got] == ["0%"]  # 15% still in flight
    release.set()
    for _ in range(250):
        if len(got) >= 3:
            break
        await asyncio.sleep(0.02)
    await relay.finish("✅ done")
    # 30% and 45% were superseded while 15% was in flight; only the newest (60%) was sent after it
    assert [t.split("… ")[-1].split(" ")[0] for t in got] == ["0%", "15%", "60%", "✅"]
    await relay._send("boom")  # a failing sink is logged, never raised into the command
    assert relay.sent[-1] == "✅ done"


async def test_post_then_edit():
    calls: list[tuple] = []

    async def post(text):
        calls.append(("post", text))
        return None if text == "fails" else 77

    async def edit(handle, text):
        calls.append(("edit", handle, text))

    sink = PostThenEdit(post, edit)
    await sink("fails")  # posting failed: the next text posts again rather than editing nothing
    await sink("a")
    await sink("b")
    assert calls == [("post", "fails"), ("post", "a"), ("edit", 77, "b")]
