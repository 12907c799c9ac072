"""The HTTP guard of the MCP server: rate and size limits per token, start-up refusals, the REST face.

A real server on 127.0.0.1 (standalone backend on the real config, store in tmp_path), the official
streamable HTTP client for the MCP calls, plain HTTP for what a client library would never send.
"""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import httpx2
import pytest
from bot_helpers import until
from mcp_helpers import TRADER_TOKEN, VIEWER_TOKEN, error_text, free_port, http_session

from bot.mcp_server.backend import StandaloneBackend, file_analyser
from bot.mcp_server.http import HttpOptions, http_server, parse_host_port
from bot.mcp_server.server import build_server
from core.api import Store
from core.config.loading import load_config
from core.config.settings import Secrets
from core.domain.exceptions import UserFacingError


@asynccontextmanager
async def serving(tmp_path, **opts):
    cfg = load_config()
    store = Store(tmp_path / "s.sqlite")
    port = free_port()
    options = HttpOptions(port=port, tokens={TRADER_TOKEN: "trader", VIEWER_TOKEN: "viewer"}, **opts)
    server = http_server(build_server(StandaloneBackend(cfg, store, file_analyser(cfg))), options, own_signals=False)
    task = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        store.close()


async def test_a_huge_argument_is_a_tool_error_and_the_session_goes_on(tmp_path):
    async with serving(tmp_path) as base, http_session(f"{base}/mcp", VIEWER_TOKEN) as s:
        text = error_text(await s.call_tool("analyse_range_scalp_opportunity", {"symbol": "B" * 100_000}))
        assert "symbol: String should have at most 32 characters" in text and "BBBB" not in text
        assert "viewer role" in error_text(await s.call_tool("propose_trade", {"symbol": "XAUUSDc",
                                                                                "strategy": "bb_fade"}))
        ok = await s.call_tool("get_closed_trades", {"n": 3})
        assert not ok.is_error and ok.structured_content == {"trades": []}


async def test_rate_limit_is_per_token_and_oversized_bodies_are_refused(tmp_path):
    async with serving(tmp_path, rate_per_minute=3, max_body_bytes=2048) as base:
        async with httpx2.AsyncClient() as c:
            def post(token, body=None, content=None):
                return c.post(f"{base}/tools/list_symbols", json=body if content is None else None, content=content,
                              headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})

            codes = [(await post(TRADER_TOKEN, {})).status_code for _ in range(4)]
            assert codes == [200, 200, 200, 429]
            assert (await post(VIEWER_TOKEN, {})).status_code == 200  # its own budget
            big = await post(VIEWER_TOKEN, content=b'{"x": "' + b"y" * 5000 + b'"}')
            assert big.status_code == 413 and big.text == "Request too large"


async def test_rest_face_for_gpt_actions_uses_the_same_models_and_roles(tmp_path):
    async with serving(tmp_path) as base:
        async with httpx2.AsyncClient() as c:
            h = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
            r = await c.post(f"{base}/tools/list_symbols", json={}, headers=h)
            assert r.status_code == 200 and "EURUSDc" in [s["name"] for s in r.json()["symbols"]]
            r = await c.post(f"{base}/tools/get_closed_trades", json={"n": 0}, headers=h)
            assert r.status_code == 400 and r.json()["error"].startswith("Invalid arguments: n:")
            r = await c.post(f"{base}/tools/propose_trade", json={"symbol": "XAUUSDc", "strategy": "bb_fade"},
                             headers=h)
            assert r.status_code == 403
            r = await c.post(f"{base}/tools/list_symbols", json={})
            assert r.status_code == 401 and r.text == "Unauthorized"


def test_http_refuses_to_start_without_a_token():
    cfg = load_config()
    none = Secrets(_env_file=None)
    with pytest.raises(UserFacingError, match="non-loopback address, without a token"):
        HttpOptions.from_config(cfg, none, host="0.0.0.0", port=8765)
    with pytest.raises(UserFacingError, match="needs a bearer token"):
        HttpOptions.from_config(cfg, none, host="127.0.0.1", port=8765)
    opts = HttpOptions.from_config(cfg, Secrets(_env_file=None, mcp_token=TRADER_TOKEN,
                                                mcp_viewer_token=VIEWER_TOKEN), host="0.0.0.0", port=9)
    assert opts.tokens == {TRADER_TOKEN: "trader", VIEWER_TOKEN: "viewer"}
    assert TRADER_TOKEN not in repr(opts) and TRADER_TOKEN not in str(opts)


def test_cli_mcp_http_without_token_is_one_line(capsys, monkeypatch, tmp_path):
    from bot.cli import main

    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.delenv("MONEYBOT_MCP_TOKEN", raising=False)
    assert main(["mcp", "--http", "0.0.0.0:8765"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Refusing to serve MCP on 0.0.0.0") and err.count("\n") == 1
    assert main(["mcp", "--http", "nonsense"]) == 2
    assert "is not HOST:PORT" in capsys.readouterr().err
    assert parse_host_port("[::1]:8765") == ("::1", 8765)


async def test_a_foreign_host_header_is_refused_dns_rebinding(tmp_path):
    async with serving(tmp_path) as base:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        async with httpx2.AsyncClient() as c:
            r = await c.post(f"{base}/mcp", json=body, headers={
                "Authorization": f"Bearer {TRADER_TOKEN}", "Host": "attacker.example:80",
                "Accept": "application/json, text/event-stream"})
        assert r.status_code == 421


async def test_cli_mcp_http_serves_the_tools_with_the_env_token(tmp_path):
    import subprocess
    import sys
    import time

    from mcp_helpers import ROOT, write_config

    port = free_port()
    cfg = write_config(tmp_path)
    env = {"PYTHONPATH": str(ROOT), "MONEYBOT_MCP_TOKEN": TRADER_TOKEN, "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "--config", str(cfg), "mcp", "--http",
                             f"127.0.0.1:{port}"], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60  # a loaded CI machine takes seconds to import the SDK and pandas
        while time.monotonic() < deadline:
            try:
                async with http_session(f"http://127.0.0.1:{port}/mcp", TRADER_TOKEN) as s:
                    names = [t.name for t in (await s.list_tools()).tools]
                    health = (await s.call_tool("get_health", {})).structured_content
                break
            except Exception:  # noqa: BLE001 - not listening yet
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("moneybot mcp --http did not come up")
        assert "propose_trade" in names and health["mode"] == "standalone"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "streamable HTTP at http://127.0.0.1" in err and TRADER_TOKEN not in err
