"""`moneybot mcp` over stdio, driven by the official MCP client (ClientSession over stdio_client).

The server is the real console script in a subprocess, standalone (no bot in it): it reads the
configured market data and a store in tmp_path. Each bad call must give a tool error with one clear
line, and the same session must answer the next call.
"""
from __future__ import annotations

import json

from mcp_helpers import error_text, stdio_session, without_extras, write_config

from bot.cli import main
from bot.mcp_server.tools import TOOLS

TOOL_NAMES = [t.name for t in TOOLS]


async def test_lists_the_tools_and_the_analysis_equals_analyse_json(tmp_path, capsys):
    cfg = write_config(tmp_path)
    async with stdio_session(cfg) as s:
        listed = await s.list_tools()
        assert [t.name for t in listed.tools] == TOOL_NAMES
        assert not ({"approve", "execute", "close", "pause", "resume"} & {w for t in listed.tools
                                                                          for w in t.name.split("_")})
        res = await s.call_tool("analyse_range_scalp_opportunity", {"symbol": "eurusdc"})
        assert not res.is_error
        got = res.structured_content
    assert main(["--config", str(cfg), "analyse", "EURUSDc", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    cli.pop("timings_ms")
    assert without_extras(got) == cli  # the same moment (the data's last bar): the same answer
    # the seed's shape, spelled out for the model
    assert got["verdict"] == ("tradeable" if cli["passed"] else "no_trade")
    viable = [s for s in cli["strategies"] if s["viable"]]
    assert got["top_strategy"] == (viable[0] if viable else None)
    assert got["range"] is None or {"range_high", "range_low", "critical_gaps", "nested_ranges",
                                    "touch_count"} <= set(got["range"])
    assert all({"name", "passed", "reason"} <= set(f) for f in got["filters"]) and got["filters"]
    assert "tick" in got["data_timestamps"] or got["data_timestamps"]


async def test_bad_calls_are_tool_errors_and_the_server_keeps_serving(tmp_path):
    async with stdio_session(write_config(tmp_path)) as s:
        cases = [
            ("analyse_range_scalp_opportunity", {"symbol": "XAUUSD"}, "Did you mean XAUUSDc"),
            ("analyse_range_scalp_opportunity", {"symbol": "X" * 100_000}, "symbol: String should have at most 32"),
            ("analyse_range_scalp_opportunity", {"symbol": 12345}, "symbol: Input should be a valid string"),
            ("analyse_range_scalp_opportunity", {}, "symbol: Field required"),
            ("propose_trade", {"symbol": "XAUUSDc"}, "strategy: Field required"),
            ("get_proposal", {"proposal_id": "doesnotexist"}, "no proposal or queued request with id 'doesnotexist'"),
            ("get_closed_trades", {"n": "ten"}, "n: Input should be a valid integer"),
            ("get_metrics", {"days": 0}, "days: Input should be greater than or equal to 1"),
        ]
        for name, args, needle in cases:
            text = error_text(await s.call_tool(name, args))
            assert needle in text, text
            assert "\n" not in text and "Traceback" not in text and len(text) < 300
            ok = await s.call_tool("list_symbols", {})  # still serving
            assert not ok.is_error and "XAUUSDc" in [x["name"] for x in ok.structured_content["symbols"]]


async def test_reads_the_store_config_resource_prompt_and_queues_a_proposal(tmp_path):
    cfg = write_config(tmp_path)
    async with stdio_session(cfg, env={"MONEYBOT_MCP_TOKEN": "never-shown-" + "z" * 20}) as s:
        trades = await s.call_tool("get_open_trades", {})
        assert trades.structured_content == {"trades": [], "source": "store"}
        closed = await s.call_tool("get_closed_trades", {"n": 5})
        assert closed.structured_content == {"trades": []}
        metrics = await s.call_tool("get_metrics", {"days": 30})
        assert metrics.structured_content["trades"] == 0
        health = (await s.call_tool("get_health", {})).structured_content
        assert health["mode"] == "standalone" and not health["ok"] and "no running bot" in health["summary"]
        res = await s.read_resource("moneybot://config")
        conf = json.loads(res.contents[0].text)
        assert conf["symbols"]["XAUUSDc"]["digits"] == 2 and conf["mcp"]["enabled"] is False
        assert "never-shown" not in res.contents[0].text
        prompt = await s.get_prompt("scalp_check", {"symbol": "BTCUSDc"})
        text = prompt.messages[0].content.text
        assert 'analyse_range_scalp_opportunity(symbol="BTCUSDc")' in text and "Approve" in text
        queued = (await s.call_tool("propose_trade", {"symbol": "xauusdc", "strategy": "bb_fade"})).structured_content
        assert queued["status"] == "queued" and queued["symbol"] == "XAUUSDc"
        again = (await s.call_tool("get_proposal", {"proposal_id": queued["proposal_id"]})).structured_content
        assert again["status"] == "queued" and "running bot" in again["message"]
    # the request sits in the shared store for the running bot
    from core.api import Store

    with Store(tmp_path / "moneybot.sqlite") as store:
        reqs = store.kv.items("mcp_request:")
    assert [r["strategy"] for r in reqs.values()] == ["bb_fade"]
