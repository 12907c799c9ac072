"""MCP inside `moneybot run` (config `mcp.enabled`): HTTP at mcp.host:mcp.port/mcp plus the request queue.

Started by the runner once the service is ready, on the runner's event loop, so a proposal's card lands
in the running bot's chats and the monitor manages the trade after the tap. stdio is not offered here:
the process's stdin is the console chat. A missing token is said on the console and the bot runs on
without MCP (a chat bot must not die for its optional front door).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from bot.mcp_server.backend import BotBackend
from bot.mcp_server.chats import ChatPoster
from bot.mcp_server.http import HttpOptions, http_server
from bot.mcp_server.inbox import run_inbox
from bot.mcp_server.server import build_server
from core.domain.exceptions import UserFacingError

log = logging.getLogger(__name__)


class McpInBot:
    def __init__(self, runner: Any) -> None:
        self.backend = BotBackend(runner.service, runner.router.card, ChatPoster(runner))
        self.runner = runner
        self.http: Any = None
        self.tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        cfg, service = self.runner.cfg, self.runner.service
        self.tasks.append(asyncio.create_task(run_inbox(service.store, self.backend), name="mcp-inbox"))
        try:
            opts = HttpOptions.from_config(cfg, self.runner.secrets)
        except UserFacingError as e:
            self.runner.say(f"MCP over HTTP is off: {e.message} (queued proposals from `moneybot mcp` still work)")
            return
        self.http = http_server(build_server(self.backend, stdio_role=cfg.mcp.stdio_role), opts, own_signals=False)
        self.tasks.append(asyncio.create_task(self.http.serve(), name="mcp-http"))
        self.runner.say(f"MCP: http://{opts.host}:{opts.port}/mcp (bearer token required)")

    async def stop(self) -> None:
        if self.http is not None:
            self.http.should_exit = True
        for t in self.tasks:
            if t.get_name() == "mcp-http":
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(t), 5.0)
            if not t.done():
                t.cancel()
        for t in self.tasks:
            with contextlib.suppress(BaseException):
                await t


async def start_mcp(runner: Any) -> McpInBot | None:
    if not getattr(getattr(runner.cfg, "mcp", None), "enabled", False):
        return None
    mcp = McpInBot(runner)
    await mcp.start()
    return mcp
