"""One process, one core: the TradingService plus every chat front end that is configured.

Console chat always runs (it is the embedded default); Telegram and Discord start too when their
tokens are set. They share ONE TradingService, hence one store, one broker and one monitor task, so an
approval on Telegram and a /status on Discord see the same trades. Shutdown is orderly on EOF (console
only), /quit typed at the console, SIGINT or SIGTERM: commands first (none new, running ones cancelled),
then the service (monitor, store; its last alerts still reach the chats), then the chats' connections.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

from bot import logsafe
from bot.chat_link import ChatLink
from bot.commands import CommandRouter
from bot.console import ConsoleChat
from core.app import build_for_run, bundled_data_notice, start_banner
from core.config.model import PROJECT_ROOT, AppConfig
from core.config.settings import Secrets, secret_values
from core.domain.timeframes import Timeframe

log = logging.getLogger(__name__)

CHART_DIR = PROJECT_ROOT / "data" / "charts"


def candle_source(service: Any) -> Callable[[str, str, int], Any]:
    """How charts get bars: from the service's broker (PaperBroker replay or MT5), off the event loop."""

    async def fetch(symbol: str, timeframe: str, count: int):
        broker = getattr(service, "broker", None)
        if broker is None:
            return None
        return await asyncio.to_thread(broker.candles, symbol, Timeframe.parse(timeframe), count)

    return fetch


def error_reporter(service: Any) -> Callable[[BaseException, dict], Any] | None:
    """Unexpected chat-layer failures go to the ErrorHandler (counted toward auto-disable, alerted)."""
    errors = getattr(service, "errors", None)
    if errors is None or not hasattr(errors, "handle"):
        return None

    def report(exc: BaseException, context: dict) -> None:
        errors.handle("chat_command_failed", f"{type(exc).__name__} (error id {context.get('error_id')})",
                      context={k: v for k, v in context.items() if k != "text"})

    return report


def make_router(service: Any, cfg: AppConfig, chart_dir: Path = CHART_DIR) -> CommandRouter:
    return CommandRouter(service, cfg, candles=candle_source(service), chart_dir=chart_dir,
                         report_error=error_reporter(service))


class Runner:
    def __init__(
        self,
        service: Any,
        cfg: AppConfig,
        secrets: Secrets,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        chart_dir: Path = CHART_DIR,
        telegram_kwargs: dict | None = None,
        console: bool = True,
        link_options: dict | None = None,
    ) -> None:
        self.service = service
        self.cfg = cfg = getattr(service, "cfg", None) or cfg  # the service's (a fresh clone swaps it)
        self.secrets = secrets
        self.router = make_router(service, cfg, chart_dir)
        self.console = ConsoleChat(self.router, stdin=stdin, stdout=stdout, chart_dir=chart_dir,
                                   notice=bundled_data_notice(cfg)) if console else None
        self.telegram = None
        self.discord = None
        self.links: dict[str, ChatLink] = {}  # chat platform -> its connection, retried in the background
        self._commands_open = False  # Telegram polls only once the service is ready
        self._console_task: asyncio.Task | None = None
        self._telegram_kwargs = telegram_kwargs or {}
        self._link_options = link_options or {}
        self.stop_event = asyncio.Event()
        self.mcp = None  # bot.mcp_server.in_bot.McpInBot when config mcp.enabled

    async def start(self) -> None:
        logsafe.install(secret_values(self.secrets))  # every SecretStr: tokens (chat, MCP) and the MT5 password
        # The chats connect, and their alert sinks register, BEFORE the service starts: recovery pages what
        # it finds after a crash (an orphan adopted, trades missing) and those pages must reach a phone.
        # Telegram takes commands only once the service is ready; Discord logs in meanwhile. A chat that
        # cannot be reached is retried in the background (bot.chat_link) and joins when it connects.
        if self.console is not None:
            self.service.alerts.register_sink("console", self.console.on_alert)
        if self.secrets.telegram_token:
            from telegram.error import InvalidToken

            link = self._link("telegram", "Telegram", self._open_telegram, (InvalidToken,),
                              "set MONEYBOT_TELEGRAM_TOKEN to the token @BotFather gives you, then restart")
            link.start()
            await link.first_try.wait()
        if self.secrets.discord_token:
            import discord

            self._link("discord", "Discord", self._open_discord, (discord.LoginFailure,),
                       "set MONEYBOT_DISCORD_TOKEN to the bot token from the Discord developer portal "
                       "(Bot > Reset Token), then restart").start()
            await asyncio.sleep(0)  # its alert sink registers now, before recovery pages anything
        await self.service.start()
        self._show_banner()
        self._commands_open = True
        if self.telegram is not None:
            try:
                await self.telegram.start_polling()
            except Exception as e:  # connected, but polling could not start: drop it and try again later
                await self._drop_telegram()
                self.links["telegram"].lost(e)

    def _show_banner(self) -> None:
        """The replay clock and each symbol's data span, under the console's welcome (and in the log)."""
        try:
            banner = start_banner(self.service)
        except Exception:  # noqa: BLE001 - a banner must never stop the start
            log.warning("could not build the start banner", exc_info=True)
            return
        if not banner:
            return
        log.info("%s", banner)
        if self.console is not None:
            self.console.notice = "\n".join(x for x in (self.console.notice, banner) if x)

    def _link(self, key: str, name: str, open_, rejected: tuple, fix: str) -> ChatLink:
        report = getattr(self.service, "set_chat_link", None)
        self.service.alerts.expect_sink(key)  # what it misses until it connects reaches it when it does
        self.links[key] = ChatLink(name, open_, rejected=rejected, fix=fix, say=self.say, report=report,
                                   **self._link_options)
        return self.links[key]

    def say(self, text: str) -> None:
        """A line for the operator: the console chat when there is one, else the log."""
        if self.console is not None:
            self.console.say(text)
        else:
            log.warning("%s", text)

    async def _open_telegram(self) -> None:
        """One connection attempt; on failure nothing is left running (the next try builds afresh)."""
        from bot.telegram_bot import TelegramFrontEnd

        chat = self.secrets.telegram_chat_id
        alert_chats = [chat] if chat is not None else list(self.secrets.trader_user_ids)
        kwargs = dict(self._telegram_kwargs)
        configured = getattr(getattr(self.cfg, "telegram", None), "base_url", None)
        base_url = getattr(self.secrets, "telegram_base_url", None) or configured  # the environment wins
        if base_url and "base_url" not in kwargs:
            kwargs["base_url"] = base_url
        front = TelegramFrontEnd(self.router, self.secrets.telegram_token.get_secret_value(), chat_id=chat,
                                 alert_chat_ids=alert_chats, **kwargs)
        try:
            await front.connect()
            if self._commands_open:
                await front.start_polling()
        except BaseException:
            with contextlib.suppress(Exception):
                await front.stop()  # also when connected but polling failed: the app is running then
            raise
        self.telegram = front
        self.service.alerts.register_sink("telegram", front.on_alert)

    async def _drop_telegram(self) -> None:
        with contextlib.suppress(Exception):
            self.service.alerts.unregister_sink("telegram")
        with contextlib.suppress(Exception):
            await self.telegram.stop()
        self.telegram = None

    async def _open_discord(self):
        """Log in (its alerts wait for that, up to 10 s); then `serve` holds the gateway, which discord.py
        keeps up itself. A failure unregisters its alerts: they would only wait for a login."""
        from bot.discord_bot import MoneyBotClient

        alerts = self.service.alerts
        client = MoneyBotClient(self.router, guild_id=self.secrets.discord_guild_id,
                                alert_channel_id=self.secrets.discord_alert_channel_id)
        self.discord = client
        alerts.register_sink("discord", client.on_alert)

        async def down() -> None:
            with contextlib.suppress(Exception):
                alerts.unregister_sink("discord")
            with contextlib.suppress(Exception):
                await client.close()
            if self.discord is client:
                self.discord = None

        try:
            await client.login(self.secrets.discord_token.get_secret_value())
        except BaseException:
            await down()
            raise

        async def serve() -> None:
            try:
                await client.connect(reconnect=True)
            except Exception:
                await down()
                raise

        return serve

    async def run(self) -> int:
        try:
            # inside the try: the chats connect before the service starts, so a service that cannot
            # start must still have them closed (a polling Telegram app, a Discord login) on the way out
            await self.start()
            from bot.mcp_server.in_bot import start_mcp

            self.mcp = await start_mcp(self)  # config mcp.enabled: the MCP front door on this loop
            waiters = [asyncio.create_task(self.stop_event.wait())]
            if self.console is not None:
                self._console_task = asyncio.create_task(self.console.run(), name="console")
                waiters.append(self._console_task)
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            bots = any(link.alive for link in self.links.values())  # connected, or still trying
            if self._console_task in done and bots and not self.console.quit_requested:
                await self.stop_event.wait()  # EOF (no stdin under a service manager): the bots keep running
        finally:
            await self.stop()
        return 0

    async def stop(self) -> None:
        """Commands first (no new ones; running ones cancelled), then the service: the monitor stops and
        the alerts still queued go out through the chats, which are closed last."""
        if self._console_task is not None and not self._console_task.done():
            self._console_task.cancel()
        for link in self.links.values():  # no reconnecting while we stop
            await link.stop()
        if getattr(self, "mcp", None) is not None:
            await _stop_step("MCP", self.mcp.stop)  # no new proposals while the service stops
        try:
            if self.telegram is not None:
                await _stop_step("Telegram polling", self.telegram.stop_polling)
            if self.discord is not None:
                await _stop_step("Discord commands", self.discord.stop_commands)
            await self.service.stop()
        finally:
            alerts = getattr(self.service, "alerts", None)
            for name in ("console", "telegram", "discord"):
                with contextlib.suppress(Exception):
                    alerts.unregister_sink(name)
            if self.telegram is not None:
                await _stop_step("Telegram", self.telegram.stop)
            if self.discord is not None:
                await _stop_step("Discord", self.discord.close)
            for link in self.links.values():  # a connected Discord's `serve` ends with its close()
                if link.task is not None and not link.task.done():
                    link.task.cancel()


async def _stop_step(what: str, step: Callable[[], Awaitable[Any]]) -> None:
    """One step of the shutdown: a failure must not keep the later steps (the other chat, the service)
    from running, but it goes to the log, where whoever wonders why a chat said nothing will look."""
    try:
        await step()
    except Exception:  # noqa: BLE001
        log.warning("stopping %s failed", what, exc_info=True)


async def run_app(cfg: AppConfig, secrets: Secrets, **kwargs: Any) -> int:
    service = kwargs.pop("service", None) or build_for_run(cfg, secrets)
    runner = Runner(service, cfg, secrets, **kwargs)
    install_stop_signals(asyncio.get_running_loop(), runner)
    return await runner.run()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def install_stop_signals(loop: asyncio.AbstractEventLoop, runner: Runner) -> None:
    """The first SIGINT/SIGTERM starts the graceful stop; a second one exits at once. A stop stuck on a
    hung broker call (a frozen MT5 terminal) could otherwise only be killed from outside.

    The second signal gets a plain `signal.signal` handler, not the loop's: it must work while the loop
    itself is blocked (a broker lock held by the hung call) and after the loop has gone (the interpreter
    waiting at exit for the hung worker thread)."""

    def first(sig: int) -> None:
        runner.stop_event.set()
        runner.say(f"Stopping… ({'Ctrl-C' if sig == signal.SIGINT else 'that signal'} again forces an exit)")
        for s in STOP_SIGNALS:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(s)
            with contextlib.suppress(Exception):
                signal.signal(s, force_exit)

    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, first, sig)


def force_exit(signum: int, frame: Any = None) -> None:
    """Exit now, without waiting for anything. SQLite needs nothing from us: every step is one committed
    transaction (WAL, synchronous=FULL), and one cut short is rolled back at the next open, as after a
    power cut (tests/test_crash_kill.py). Only the log is flushed, so its last lines say what hung."""
    msg = "forcing exit: the graceful stop did not finish (a broker call may be hung); committed work is safe"
    code = 128 + int(signum)
    # the log write and flush below could block (a handler lock held by a thread stuck on a stalled
    # stderr pipe): a watchdog makes sure the exit happens anyway
    watchdog = threading.Timer(2.0, os._exit, (code,))
    watchdog.daemon = True
    watchdog.start()
    with contextlib.suppress(Exception):
        os.write(2, (msg + "\n").encode())
    with contextlib.suppress(Exception):
        log.warning(msg)
    for h in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            h.flush()
    os._exit(code)
