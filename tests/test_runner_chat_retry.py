"""A chat platform unreachable at start-up is retried in the background and joins when it connects; a
rejected token is said once with the fix and never retried. /health shows each chat's state.

All offline: the Telegram Bot API stand-in starts on a port the bot has already found closed; Discord's
REST base is pointed at 127.0.0.1, first at a closed port, then at a server that refuses the token."""
from __future__ import annotations

import asyncio
import io
import socket

import pytest
from aiohttp import web
from bot_helpers import TRADER, OpenStdin, start_core, until
from fakes.bot_api_server import BotApiServer

from bot.chat_link import ChatLink
from bot.runner import Runner
from core.config.settings import Secrets
from core.domain.models import Alert

TG_TOKEN = "987654:SECRET-token-never-logged-ddddddddddddddddddd"
DC_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"
FAST = {"first_delay": 0.1, "max_delay": 0.4}


def _closed_port() -> int:
    with socket.socket() as sock:  # a port nobody listens on (yet)
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _runner(tmp_path, secrets, **kw):
    service, clock = await start_core(tmp_path, overrides={"alerts": {"sink_backoff_seconds": 0.01}})
    await service.stop()  # the runner starts it again itself
    stdin, out = OpenStdin(), io.StringIO()
    runner = Runner(service, service.cfg, secrets, stdin=stdin, stdout=out, chart_dir=tmp_path / "charts",
                    link_options=FAST, **kw)
    return runner, service, clock, stdin, out


async def test_telegram_unreachable_at_start_connects_later_and_gets_alerts_and_commands(tmp_path):
    port = _closed_port()
    secrets = Secrets(_env_file=None, telegram_token=TG_TOKEN, telegram_chat_id=TRADER, trader_user_ids=[TRADER])
    runner, service, clock, stdin, out = await _runner(
        tmp_path, secrets, telegram_kwargs={"base_url": f"http://127.0.0.1:{port}/bot",
                                            "base_file_url": f"http://127.0.0.1:{port}/file/bot", "poll_timeout": 1})
    task = asyncio.create_task(runner.run())
    api = BotApiServer(token=TG_TOKEN)
    try:
        await until(lambda: out.getvalue().count("Telegram could not connect (NetworkError); trying again in") >= 2)
        assert out.getvalue().count("Alerts go to the other chats meanwhile.") == 1  # said on the first only
        assert service.ready and "telegram" not in service.alerts.sink_names
        h = service.health()
        assert h.chats["Telegram"].startswith("not connected, retrying since ") and not h.ok
        assert any(p.startswith("Telegram not connected") for p in h.problems)
        reply = await runner.router.handle_text("/health", TRADER)
        assert "Chats: Telegram not connected, retrying since " in reply.text and "(NetworkError, next try in" in reply.text
        stdin.feed("/status\n")  # the console works meanwhile
        await until(lambda: "No open range scalps." in out.getvalue())
        service.alerts.alert_exit_failed(4242, "EURUSD", "requote", attempts=3)  # Telegram misses this one
        await until(lambda: "EXIT FAILED - EURUSD #4242" in out.getvalue())

        await api.start(port)  # the network is back
        await until(lambda: "Telegram connected: its alerts and commands are back on." in out.getvalue())
        assert "telegram" in service.alerts.sink_names
        assert service.health().chats["Telegram"].startswith("connected since ")
        reply = await runner.router.handle_text("/health", TRADER)
        assert "Chats: Telegram connected since " in reply.text
        api.push_text("/status", TRADER)  # commands: polling started, since the service was ready
        await api.wait_for(lambda a: [c for c in a.sent("sendMessage") if "No open range scalps" in c.params["text"]])
        service.alerts.send(Alert(kind="system_error", severity="high", title="HIGH: test_alert", text="disk 91% full",
                                  created_at=clock.now()))
        await api.wait_for(lambda a: [c for c in a.sent("sendMessage") if "disk 91% full" in c.params["text"]])
        late = [c.params["text"] for c in api.sent("sendMessage") if "#4242" in c.params["text"]]
        assert len(late) == 1 and "⏱ delayed, from " in late[0] and "MANUAL CLOSE REQUIRED" in late[0]
    finally:
        runner.stop_event.set()
        stdin.feed("")
        await asyncio.wait_for(task, 30)
        await api.stop()
    assert TG_TOKEN.split(":")[1] not in out.getvalue()
    assert [link.task.done() for link in runner.links.values()] == [True]


async def test_rejected_telegram_token_is_said_once_with_the_fix_and_not_retried(tmp_path):
    api = await BotApiServer(token=TG_TOKEN).start()
    api.fail("getMe", status=401, description="Unauthorized", times=50)
    secrets = Secrets(_env_file=None, telegram_token=TG_TOKEN, trader_user_ids=[TRADER])
    runner, service, clock, stdin, out = await _runner(
        tmp_path, secrets, telegram_kwargs={"base_url": api.base_url, "base_file_url": api.base_file_url,
                                            "poll_timeout": 1})
    task = asyncio.create_task(runner.run())
    try:
        await until(lambda: "Telegram rejected the token" in out.getvalue())
        await asyncio.sleep(1.0)  # 2.5 retry periods of FAST: a retry would have come by now
        assert [c.method for c in api.calls] == ["getMe"]  # one try, refused
        h = service.health()
        assert h.chats["Telegram"].startswith("token rejected (InvalidToken: set MONEYBOT_TELEGRAM_TOKEN")
        stdin.feed("")  # EOF: nothing left worth waiting for, the process ends
        assert await asyncio.wait_for(task, 30) == 0
    finally:
        runner.stop_event.set()
        await api.stop()
    said = out.getvalue()
    assert said.count("Telegram rejected the token (InvalidToken): set MONEYBOT_TELEGRAM_TOKEN to the token "
                      "@BotFather gives you, then restart. Continuing without Telegram.") == 1
    assert "trying again" not in said and TG_TOKEN.split(":")[1] not in said


class _DiscordRest:
    """Discord's REST login answered on 127.0.0.1: every token is refused (401), as a revoked one is."""

    def __init__(self) -> None:
        self.logins = 0
        self._runner: web.AppRunner | None = None

    async def start(self, port: int) -> None:
        async def me(request: web.Request) -> web.Response:
            self.logins += 1
            return web.json_response({"message": "401: Unauthorized", "code": 0}, status=401)

        app = web.Application()
        app.router.add_get("/api/v10/users/@me", me)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def test_discord_unreachable_is_retried_then_a_rejected_token_stops_the_retries(tmp_path, monkeypatch):
    import discord.http

    port = _closed_port()
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{port}/api/v10")
    secrets = Secrets(_env_file=None, discord_token=DC_TOKEN, discord_alert_channel_id=42, trader_user_ids=[TRADER])
    runner, service, clock, stdin, out = await _runner(tmp_path, secrets)
    task = asyncio.create_task(runner.run())
    rest = _DiscordRest()
    try:
        await until(lambda: "Discord could not connect (ClientConnectorError); trying again in" in out.getvalue())
        assert service.health().chats["Discord"].startswith("not connected, retrying since ")
        assert service.alerts.sink_names == ["console"]  # no alert waits on a Discord that is not there
        stdin.feed("")  # EOF on the console: the retrying Discord keeps the process alive
        await asyncio.sleep(0.3)
        assert not task.done()
        await rest.start(port)  # Discord answers now, and refuses the token
        await until(lambda: "Discord rejected the token (LoginFailure)" in out.getvalue())
        await asyncio.sleep(1.0)
        assert rest.logins == 1 and service.health().chats["Discord"].startswith("token rejected")
        assert "Reset Token" in out.getvalue()
    finally:
        runner.stop_event.set()
        await asyncio.wait_for(task, 30)
        await rest.stop()
    assert DC_TOKEN not in out.getvalue()


async def test_backoff_doubles_from_5_s_to_5_min_and_resets_after_a_connection():
    slept: list[float] = []
    said: list[str] = []
    reported: list[tuple[str, str]] = []
    fails = 9

    async def sleep(s: float) -> None:
        slept.append(s)

    async def open_() -> None:
        nonlocal fails
        if fails:
            fails -= 1
            raise ConnectionError("no route to host")

    link = ChatLink("Telegram", open_, rejected=(PermissionError,), fix="fix it", say=said.append,
                    report=lambda name, state, detail, since: reported.append((name, state)), sleep=sleep)
    await link.start()
    assert slept == [5, 10, 20, 40, 80, 160, 300, 300, 300]
    assert said[0] == ("Telegram could not connect (ConnectionError); trying again in 5 s. "
                       "Alerts go to the other chats meanwhile.")
    assert said[6] == "Telegram could not connect (ConnectionError); trying again in 5 min."
    assert said[-1] == "Telegram connected: its alerts and commands are back on." and len(said) == 10
    assert reported[-1] == ("Telegram", "connected") and link.state == "connected"
    # lost later (polling could not start): the next try is 5 s away again, not 5 min
    fails = 1
    link.lost(ConnectionError("reset"))
    await link.task
    assert slept[-2:] == [5, 10] and link.state == "connected"


@pytest.mark.parametrize("rejection", [PermissionError("401")])
async def test_a_rejection_is_never_retried(rejection):
    calls = []

    async def open_() -> None:
        calls.append(1)
        raise rejection

    said: list[str] = []
    link = ChatLink("Discord", open_, rejected=(PermissionError,), fix="set the token", say=said.append,
                    sleep=asyncio.sleep)
    await link.start()
    assert calls == [1] and link.state == "rejected" and not link.alive
    assert said == ["Discord rejected the token (PermissionError): set the token. Continuing without Discord."]


async def test_a_connection_that_keeps_dropping_backs_off_and_a_stable_one_resets():
    """Logs in, then loses the connection at once, over and over (e.g. a gateway that closes every
    session): the retry delay must keep growing, not hammer the platform every 5 s for ever."""
    slept: list[float] = []
    now = [0.0]
    lives = [0.0] * 5 + [120.0, 0.0]  # seconds each session stays up before it drops

    async def sleep(s: float) -> None:
        slept.append(s)

    async def serve() -> None:
        now[0] += lives.pop(0)
        if not lives:
            return  # closed by the runner
        raise ConnectionError("gateway closed")

    async def open_():
        return serve

    link = ChatLink("Discord", open_, rejected=(PermissionError,), fix="fix it", say=lambda _t: None,
                    sleep=sleep, monotonic=lambda: now[0])
    await link.start()
    # five quick drops double the wait; the session that lasted 2 minutes starts again from 5 s
    assert slept == [5, 10, 20, 40, 80, 5]
