"""MCP inside `moneybot run` over streamable HTTP on 127.0.0.1, with the official client.

One Runner (console chat + the Telegram stand-in) on a paper broker replaying the real data, config
`mcp.enabled`, auto-execution ON (an MCP proposal must still wait for a tap): analyse equals the /scalp
verdict for the same moment; propose posts the card to the console and to Telegram; a viewer token
cannot propose; the Telegram tap executes on the paper broker; get_proposal says executed with the
ticket; a standalone server's queued proposal is picked up by the running bot; no or a wrong token is
refused with a bare 401/403, a browser Origin with 403, and the token never reaches the log.
"""
from __future__ import annotations

import asyncio
import io
import logging

import httpx2
import pytest
from bot_helpers import TRADER, OpenStdin, start_core, until
from fakes.bot_api_server import BotApiServer
from mcp_helpers import TRADER_TOKEN, VIEWER_TOKEN, error_text, free_port, http_session, without_extras

from bot.mcp_server import inbox
from bot.runner import Runner
from core.config.settings import Secrets

TG_TOKEN = "987654:mcp-test-token-dddddddddddddddddddddddddd"


async def _runner(tmp_path, port):
    api = await BotApiServer(token=TG_TOKEN).start()
    overrides = {"mcp": {"enabled": True, "port": port},
                 "execution": {"auto_execute_enabled": True, "auto_execute_confidence_threshold": 0}}
    service, clock = await start_core(tmp_path, overrides=overrides)
    await service.stop()  # the runner starts it again itself
    secrets = Secrets(_env_file=None, telegram_token=TG_TOKEN, telegram_chat_id=TRADER, trader_user_ids=[TRADER],
                      mcp_token=TRADER_TOKEN, mcp_viewer_token=VIEWER_TOKEN)
    stdin, out = OpenStdin(), io.StringIO()
    runner = Runner(service, service.cfg, secrets, stdin=stdin, stdout=out, chart_dir=tmp_path / "charts",
                    telegram_kwargs={"base_url": api.base_url, "base_file_url": api.base_file_url, "poll_timeout": 1})
    return api, service, clock, runner, stdin, out


async def test_propose_over_http_card_in_chats_tap_executes(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    api, service, clock, runner, stdin, out = await _runner(tmp_path, port)
    task = asyncio.create_task(runner.run())
    try:
        await until(lambda: runner.mcp is not None and runner.mcp.http is not None and runner.mcp.http.started)
        async with http_session(url, TRADER_TOKEN) as s:
            assert len((await s.list_tools()).tools) == 8
            res = await s.call_tool("analyse_range_scalp_opportunity", {"symbol": "XAUUSDc"})
            got = res.structured_content
            # the /scalp verdict at this moment: the same service, the same clock
            scalp = (await service.assess("XAUUSDc")).to_dict()
            scalp.pop("timings_ms")
            assert without_extras(got) == scalp and got["verdict"] == "tradeable"
            strategy = got["top_strategy"]["strategy"]

            async with http_session(url, VIEWER_TOKEN) as viewer:
                refused = error_text(await viewer.call_tool("propose_trade", {"symbol": "XAUUSDc",
                                                                              "strategy": strategy}))
                assert "viewer role" in refused
                assert not (await viewer.call_tool("get_health", {})).is_error  # a viewer still reads

            # a standalone `moneybot mcp` queued the second strategy in the shared store: the bot proposes it
            second = next(x["strategy"] for x in got["strategies"] if x["viable"] and x["strategy"] != strategy)
            rid = inbox.enqueue(service.store, "XAUUSDc", second)
            await until(lambda: (service.store.kv.get(inbox.PREFIX + rid) or {}).get("state") == "proposed", 10)
            queued = (await s.call_tool("get_proposal", {"proposal_id": rid})).structured_content
            assert queued["status"] == "pending" and queued["strategy"] == second and queued["proposal_id"] != rid
            await api.wait_for(lambda a: [c for c in a.sent("sendMessage") if c.params.get("reply_markup")])

            prop = (await s.call_tool("propose_trade", {"symbol": "XAUUSDc", "strategy": strategy})).structured_content
            pid = prop["proposal_id"]
            assert prop["status"] == "pending" and "awaiting approval in chat" in prop["message"]
            assert prop["expires_at"] > clock.now()
            # never auto-executed, although auto-execution is on and the confidence clears the bar
            assert service.broker.positions() == []
            # the card: in the console (numbered buttons) and on Telegram (chart + keyboard)
            await until(lambda: "Approve" in out.getvalue() and "XAUUSDc" in out.getvalue())
            assert "Proposed by an AI assistant over MCP" in out.getvalue()
            cards = await api.wait_for(lambda a: [c for c in a.sent("sendMessage") if c.params.get("reply_markup")])
            keyboard = cards[-1].params["reply_markup"]["inline_keyboard"]
            assert [b["callback_data"] for row in keyboard for b in row] == [f"a:{pid}", f"r:{pid}"]
            assert api.sent("sendPhoto")  # the chart went with it
            pending = (await s.call_tool("get_proposal", {"proposal_id": pid})).structured_content
            assert pending["status"] == "pending" and pending["message"] == "awaiting approval in chat"
            # no tool can approve: only the tap in chat
            msg = next(m for m in api.messages.values()
                       if f"a:{pid}" in str(m.get("reply_markup")))
            api.push_callback(f"a:{pid}", TRADER, msg)
            await api.wait_for(lambda a: a.sent("editMessageText"))
            await until(lambda: service.broker.positions() != [])
            ticket = service.broker.positions()[0].ticket
            done = (await s.call_tool("get_proposal", {"proposal_id": pid})).structured_content
            assert done["status"] == "executed" and done["ticket"] == ticket and done["fill_price"]
            trades = (await s.call_tool("get_open_trades", {})).structured_content
            assert trades["source"] == "running bot" and [t["ticket"] for t in trades["trades"]] == [ticket]
            # a queued request the bot cannot propose fails with the reason
            rid = inbox.enqueue(service.store, "XAUUSDc", "no_such_strategy_now")
            await until(lambda: (service.store.kv.get(inbox.PREFIX + rid) or {}).get("state") == "failed", 10)
            failed = (await s.call_tool("get_proposal", {"proposal_id": rid})).structured_content
            assert failed["status"] == "failed" and "no_such_strategy_now" in failed["message"]
    finally:
        runner.stop_event.set()
        await asyncio.wait_for(task, 30)
        await api.stop()
    assert runner.mcp.tasks and all(t.done() for t in runner.mcp.tasks)
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert TRADER_TOKEN not in logged and VIEWER_TOKEN not in logged


@pytest.mark.parametrize("headers, status", [
    ({}, 401),
    ({"Authorization": "Bearer wrong-token"}, 403),
    ({"Authorization": f"Basic {TRADER_TOKEN}"}, 401),
    ({"Authorization": f"Bearer {TRADER_TOKEN}", "Origin": "http://evil.example"}, 403),
])
async def test_http_refuses_without_the_right_token_or_origin(tmp_path, headers, status):
    from bot.mcp_server.backend import StandaloneBackend
    from bot.mcp_server.http import HttpOptions, http_server
    from bot.mcp_server.server import build_server
    from core.api import Store
    from core.config.loading import load_config

    cfg = load_config()
    store = Store(tmp_path / "s.sqlite")

    async def never(symbol):
        raise AssertionError("a refused request reached the tools")

    port = free_port()
    opts = HttpOptions(port=port, tokens={TRADER_TOKEN: "trader"})
    server = http_server(build_server(StandaloneBackend(cfg, store, never)), opts, own_signals=False)
    task = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started)
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        async with httpx2.AsyncClient() as c:
            r = await c.post(f"http://127.0.0.1:{port}/mcp", json=body, headers={
                "Accept": "application/json, text/event-stream", **headers})
        assert r.status_code == status
        assert r.text in ("Unauthorized", "Forbidden") and TRADER_TOKEN not in r.text
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        store.close()
