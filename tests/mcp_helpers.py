"""Shared set-up for the MCP tests: real `mcp` clients (stdio and streamable HTTP) against MoneyBot."""
from __future__ import annotations

import json
import socket
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parent.parent
TRADER_TOKEN = "trader-tok-" + "t" * 32
VIEWER_TOKEN = "viewer-tok-" + "v" * 32
# the parts of an analyse answer that `moneybot analyse --json` does not have (and the stage timings,
# which are measured afresh on every run)
EXTRAS = ("verdict", "top_strategy", "strategy_filter", "risk_checks_shown", "timings_ms")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(tmp_path: Path, overrides: dict | None = None) -> Path:
    """The project config with the store in tmp_path (and `overrides`), as a file for `--config`."""
    from core.config.model import deep_merge
    from core.config.paths import DEFAULT_CONFIG_PATH

    raw = json.loads(DEFAULT_CONFIG_PATH.read_text())
    raw = deep_merge(raw, {"store": {"path": str(tmp_path / "moneybot.sqlite")}, **(overrides or {})})
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    return path


def without_extras(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in EXTRAS}


@asynccontextmanager
async def stdio_session(config: Path, env: dict | None = None):
    params = StdioServerParameters(command=sys.executable, args=["-m", "bot.cli", "--config", str(config), "mcp"],
                                   cwd=str(ROOT), env={"PYTHONPATH": str(ROOT), **(env or {})})
    with open(config.parent / "server-stderr.txt", "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


@asynccontextmanager
async def http_session(url: str, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0)) as client:
        async with streamable_http_client(url, http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


def error_text(result) -> str:
    assert result.is_error, result
    return result.content[0].text
