"""One process: console + Telegram on ONE TradingService; tokens never logged; alert retry after a 500."""
from __future__ import annotations

import asyncio
import io
import logging

from bot_helpers import TRADER, OpenStdin, start_core, until
from fakes.bot_api_server import BotApiServer

from bot import logsafe
from bot.runner import Runner
from core.config.settings import Secrets
from core.domain.models import Alert

TOKEN = "987654:SECRET-token-never-logged-ddddddddddddddddddd"


async def test_one_service_for_console_and_telegram_and_no_token_in_logs(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    api = await BotApiServer(token=TOKEN).start()
    service, clock = await start_core(tmp_path, overrides={"alerts": {"sink_backoff_seconds": 0.01}})
    await service.stop()  # the runner starts it again itself
    secrets = Secrets(_env_file=None, telegram_token=TOKEN, telegram_chat_id=TRADER, trader_user_ids=[TRADER])
    stdin, out = OpenStdin(), io.StringIO()
    runner = Runner(service, service.cfg, secrets, stdin=stdin, stdout=out, chart_dir=tmp_path / "charts",
                    telegram_kwargs={"base_url": api.base_url, "base_file_url": api.base_file_url, "poll_timeout": 1})
    task = asyncio.create_task(runner.run())
    try:
        await api.wait_for(lambda a: a.sent("getMe"))
        # approve on Telegram ...
        api.push_text("/scalp XAUUSDc", TRADER)
        card = (await api.wait_for(lambda a: [c for c in a.sent("sendMessage") if c.params.get("reply_markup")]))[0]
        msg = next(m for m in api.messages.values() if m.get("reply_markup"))
        api.push_callback(card.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"], TRADER, msg)
        await api.wait_for(lambda a: a.sent("editMessageText"))
        ticket = service.broker.positions()[0].ticket
        # ... and the console, on the same service, sees the trade
        stdin.feed("/status\n")
        await until(lambda: f"#{ticket} XAUUSDc" in out.getvalue())
        # an alert: the first Telegram delivery fails with a 500, the alert layer retries, it arrives
        api.fail("sendMessage", status=500, times=1)
        service.alerts.send(Alert(kind="system_error", severity="high", title="HIGH: test_alert", text="disk 91% full",
                                  created_at=clock.now()))
        await api.wait_for(lambda a: [c for c in a.sent("sendMessage") if "disk 91% full" in c.params.get("text", "")
                                      and c.params["chat_id"] == TRADER])
        await until(lambda: "*** ALERT ***" in out.getvalue() and "disk 91% full" in out.getvalue())
        stdin.feed("")  # EOF on the console: Telegram keeps the process alive
        await asyncio.sleep(0.2)
        assert not task.done()
    finally:
        runner.stop_event.set()
        await asyncio.wait_for(task, 30)
        await api.stop()
    assert not service.monitor.running
    text = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert TOKEN not in text and TOKEN.split(":")[1] not in text
    assert api.sent("getUpdates") == []  # (sanity: polling calls are not recorded, the rest are)


def test_redaction_filter_masks_tokens_in_messages_and_tracebacks():
    flt = logsafe.RedactSecrets([TOKEN])
    rec = logging.LogRecord("httpx", logging.INFO, __file__, 1, "POST https://api.telegram.org/bot%s/getMe", (TOKEN,),
                            None)
    flt.filter(rec)
    assert TOKEN not in rec.getMessage() and "***" in rec.getMessage()
    try:
        raise RuntimeError(f"boom at /bot{TOKEN}/sendMessage")
    except RuntimeError:
        import sys

        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    flt.filter(rec)
    assert TOKEN not in rec.exc_text
    # an unknown Telegram-shaped token is masked too
    other = "1234567:" + "A" * 35
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, f"url /bot{other}/x", None, None)
    flt.filter(rec)
    assert other not in rec.getMessage()


async def test_telegram_down_at_start_does_not_stop_the_process(tmp_path):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    service, clock = await start_core(tmp_path)
    await service.stop()
    secrets = Secrets(_env_file=None, telegram_token=TOKEN, trader_user_ids=[TRADER])
    stdin, out = OpenStdin(), io.StringIO()
    runner = Runner(service, service.cfg, secrets, stdin=stdin, stdout=out, chart_dir=tmp_path / "charts",
                    telegram_kwargs={"base_url": f"http://127.0.0.1:{port}/bot", "poll_timeout": 1})
    task = asyncio.create_task(runner.run())
    try:
        stdin.feed("/status\n")
        await until(lambda: "No open range scalps." in out.getvalue())
        assert service.ready
    finally:
        runner.stop_event.set()
        stdin.feed("")
        assert await asyncio.wait_for(task, 30) == 0
    text = out.getvalue()
    assert ("Telegram could not connect (NetworkError); trying again in 5 s. Alerts go to the other chats meanwhile."
            in text)  # and then connects: tests/test_runner_chat_retry.py
    assert TOKEN not in text


async def test_polling_that_cannot_start_leaves_no_telegram_task_behind_and_is_tried_again(tmp_path):
    # connected (getMe answered) but polling could not start: the front end is dropped, and its running
    # Application with it (shutdown() alone refused a running app and left its update fetcher pending);
    # then it is tried again, and polls once deleteWebhook works
    api = await BotApiServer(token=TOKEN).start()
    api.fail("deleteWebhook", status=400, description="Bad Request: webhook trouble", times=3)
    service, clock = await start_core(tmp_path)
    await service.stop()
    secrets = Secrets(_env_file=None, telegram_token=TOKEN, trader_user_ids=[TRADER])
    stdin, out = OpenStdin(), io.StringIO()
    runner = Runner(service, service.cfg, secrets, stdin=stdin, stdout=out, chart_dir=tmp_path / "charts",
                    telegram_kwargs={"base_url": api.base_url, "base_file_url": api.base_file_url, "poll_timeout": 1},
                    link_options={"first_delay": 0.5, "max_delay": 1.0})
    task = asyncio.create_task(runner.run())
    try:
        await until(lambda: "Telegram could not start (BadRequest); trying again in 0.5 s." in out.getvalue())
        assert "telegram" not in service.alerts.sink_names
        left = [t.get_name() for t in asyncio.all_tasks() if "Application" in t.get_name() or "Updater" in t.get_name()]
        assert left == []
        await until(lambda: "Telegram connected: its alerts and commands are back on." in out.getvalue())
        assert "telegram" in service.alerts.sink_names
        api.push_text("/status", TRADER)
        await api.wait_for(lambda a: [c for c in a.sent("sendMessage") if "No open range scalps" in c.params["text"]])
    finally:
        runner.stop_event.set()
        stdin.feed("")
        assert await asyncio.wait_for(task, 30) == 0
        await api.stop()
    assert out.getvalue().count("Telegram could not connect (BadRequest)") == 2  # the background tries that failed too
    left = [t.get_name() for t in asyncio.all_tasks() if "Application" in t.get_name() or "Updater" in t.get_name()]
    assert left == []
