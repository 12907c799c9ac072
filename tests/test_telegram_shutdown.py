"""Ctrl-C / SIGTERM while a Telegram command is still working: the front end stops promptly.

PTB's `Application.stop()` waits for every update still being handled, so a `/backtest` that had minutes
of CPU left held the whole process after the trader pressed Ctrl-C. The backtest is held at half-way
(as in test_telegram_backtest) so the test does not depend on how fast the machine is.
"""
from __future__ import annotations

import asyncio
import threading
import time

from bot_helpers import TRADER, start_core
from fakes.bot_api_server import BotApiServer

from bot.progress import Cancelled
from bot.runner import make_router
from bot.telegram_bot import TelegramFrontEnd
from core.backtest.api import run_backtest

TOKEN = "123456:TEST-token-not-real-aaaaaaaaaaaaaaaaaaaaaaa"


class HeldAtHalfway:
    """run_backtest whose worker waits at 50% until released; records how the worker ended."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()
        self.ended: list[str] = []

    def __call__(self, cfg, symbol, *, progress, **kw):
        def prog(done: int, total: int) -> None:
            progress(done, total)
            if done >= total // 2 and not self.reached.is_set():
                self.reached.set()
                self.release.wait(30)

        try:
            report = run_backtest(cfg, symbol, progress=prog, **kw)
        except Cancelled:
            self.ended.append("cancelled")
            raise
        self.ended.append("finished")
        return report


async def test_stop_does_not_wait_for_a_running_backtest(tmp_path):
    api = await BotApiServer(token=TOKEN).start()
    service, clock = await start_core(tmp_path)
    router = make_router(service, service.cfg, chart_dir=tmp_path / "charts")
    router.backtest.min_interval = 0.0
    held = HeldAtHalfway()
    router.backtest.runner = held
    fe = TelegramFrontEnd(router, TOKEN, base_url=api.base_url, base_file_url=api.base_file_url, poll_timeout=1)
    await fe.start()
    try:
        api.push_text("/backtest XAUUSDc 3", TRADER)
        assert await asyncio.to_thread(held.reached.wait, 30)
        t0 = time.monotonic()
        stopping = asyncio.create_task(fe.stop())
        done, _ = await asyncio.wait([stopping], timeout=5)
        held.release.set()  # let the worker thread reach its next progress report (and stop there)
        assert done, "TelegramFrontEnd.stop() waited for the backtest to finish"
        await stopping
        assert time.monotonic() - t0 < 5
        for _ in range(200):
            if held.ended:
                break
            await asyncio.sleep(0.05)
        assert held.ended == ["cancelled"]  # the worker stopped instead of burning the CPU to the end
        # the trader's progress message says the backtest stopped (not stuck at 50 % for ever)
        progress = [m for m in api.messages.values() if m["chat"]["id"] == TRADER
                    and m.get("text", "").startswith(("⏳ Backtesting", "❌ Backtest"))]
        assert progress and progress[-1]["text"] == "❌ Backtest XAUUSDc stopped."
        assert not api.sent("sendPhoto")
    finally:
        held.release.set()
        if fe.app.running:
            await fe.stop()
        await service.stop()
        await api.stop()


class SlowSendApi(BotApiServer):
    """sendMessage takes a moment (a slow mobile network or Telegram under load)."""

    delay = 0.0

    async def _m_sendMessage(self, p, f):
        await asyncio.sleep(self.delay)
        return await super()._m_sendMessage(p, f)


async def test_alerts_queued_when_the_process_stops_still_reach_the_chat(tmp_path):
    # Ctrl-C right after two alerts (say the monitor's last exits): the runner unregistered the chat
    # sinks before the service drained its alert queues, so they were logged "NOT delivered" and the
    # trader's phone never heard about them.
    import io

    from bot.runner import Runner
    from core.config.settings import Secrets
    from core.domain.models import Alert

    api = await SlowSendApi(token=TOKEN).start()
    service, clock = await start_core(tmp_path)
    await service.stop()  # the runner starts it again itself
    secrets = Secrets(_env_file=None, telegram_token=TOKEN, telegram_chat_id=TRADER, trader_user_ids=[TRADER])
    runner = Runner(service, service.cfg, secrets, stdin=io.StringIO(), stdout=io.StringIO(),
                    chart_dir=tmp_path / "charts", console=False,
                    telegram_kwargs={"base_url": api.base_url, "base_file_url": api.base_file_url, "poll_timeout": 1})
    task = asyncio.create_task(runner.run())
    try:
        await api.wait_for(lambda a: a.sent("getMe"))
        for _ in range(500):
            if "telegram" in service.alerts.sink_names:
                break
            await asyncio.sleep(0.01)
        api.delay = 0.5
        for n in (1, 2):
            service.alerts.send(Alert(kind="exit_executed", severity="high", title=f"Closed #{n}",
                                      text=f"ticket 70{n} closed: time stop", created_at=clock.now()))
        await asyncio.sleep(0.1)  # the first is on its way to Telegram, the second queued behind it
        runner.stop_event.set()
        await asyncio.wait_for(task, 30)
        texts = [c.params["text"] for c in api.sent("sendMessage")]
        assert any("ticket 701 closed" in t for t in texts) and any("ticket 702 closed" in t for t in texts), texts
        assert not service.monitor.running and not runner.telegram.app.running
    finally:
        if not task.done():
            runner.stop_event.set()
            await asyncio.wait_for(task, 30)
        await api.stop()


async def test_alerts_raised_while_the_process_starts_reach_the_chat(tmp_path):
    # A restart after a crash: recovery finds a position with our magic that the journal never saw and
    # pages it (critical, "orphan adopted") while the service starts. The runner registered the chat
    # sinks only after that, so the page was logged and never reached the trader's phone.
    import io

    from bot.runner import Runner
    from core.app import build_for_run
    from core.brokers.base import OrderRequest
    from core.config.settings import Secrets
    from core.trading.authz import Authorizer

    api = await BotApiServer(token=TOKEN).start()
    first, clock = await start_core(tmp_path)
    tick = first.broker.tick("XAUUSDc")
    order = first.broker.market_order(OrderRequest(
        symbol="XAUUSDc", side="sell", volume=0.01, sl=round(tick.bid + 5, 2), tp=round(tick.bid - 8, 2),
        magic=first.cfg.execution.magic_number, comment="rs:-:manual"))  # sent, then the process died
    await first.stop()
    first.store.close()
    first.broker.close()

    service = build_for_run(first.cfg, None, clock=clock, data_dir=tmp_path, authorizer=Authorizer([TRADER], []))
    secrets = Secrets(_env_file=None, telegram_token=TOKEN, telegram_chat_id=TRADER, trader_user_ids=[TRADER])
    runner = Runner(service, service.cfg, secrets, stdin=io.StringIO(), stdout=io.StringIO(),
                    chart_dir=tmp_path / "charts", console=False,
                    telegram_kwargs={"base_url": api.base_url, "base_file_url": api.base_file_url, "poll_timeout": 1})
    task = asyncio.create_task(runner.run())
    try:
        await api.wait_for(lambda a: [c for c in a.sent("sendMessage")
                                      if "magic number but not in its records" in c.params["text"] and c.params["chat_id"] == TRADER])
        assert service.recovery.orphans_adopted == [order.position]
    finally:
        runner.stop_event.set()
        await asyncio.wait_for(task, 30)
        await api.stop()
