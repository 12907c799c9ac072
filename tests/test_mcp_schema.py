"""`moneybot tools export` (OpenAI functions, OpenAPI 3.1) against the MCP tool list: they cannot drift.

The MCP list comes from the SDK (it derives each tool's parameters from the function signature that
`server.make_tool_fn` builds); the exports come straight from the pydantic models. Equal after dropping
the cosmetic `title`s means the same names, types, bounds, enums, defaults and descriptions.
"""
from __future__ import annotations

import json

from bot.cli import main
from bot.mcp_server.schema import openai_tools, openapi_document
from bot.mcp_server.server import build_server
from bot.mcp_server.tools import TOOLS


def _norm(node):
    if isinstance(node, dict):
        return {k: _norm(v) for k, v in node.items() if k not in ("title", "additionalProperties")}
    if isinstance(node, list):
        return [_norm(x) for x in node]
    return node


async def _mcp_tools():
    from bot.mcp_server.backend import StandaloneBackend
    from core.config.loading import load_config

    backend = StandaloneBackend(load_config(), store=None, analyser=None)  # listing touches neither
    return {t.name: t for t in await build_server(backend).list_tools()}


async def test_openai_export_equals_the_mcp_tool_list(capsys):
    assert main(["tools", "export", "--format", "openai"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported == openai_tools()
    mcp = await _mcp_tools()
    assert [f["function"]["name"] for f in exported] == list(mcp)
    for f in exported:
        fn, tool = f["function"], mcp[f["function"]["name"]]
        assert f["type"] == "function" and fn["description"] == tool.description
        assert _norm(fn["parameters"]).get("properties") == _norm(tool.input_schema).get("properties")
        assert sorted(fn["parameters"].get("required", [])) == sorted(tool.input_schema.get("required", []))
    props = {f["function"]["name"]: f["function"]["parameters"]["properties"] for f in exported}
    assert props["analyse_range_scalp_opportunity"]["symbol"]["maxLength"] == 32
    assert props["get_closed_trades"]["n"]["maximum"] == 500


async def test_openapi_export_has_one_operation_per_mcp_tool_with_its_schemas(capsys):
    assert main(["tools", "export", "--format", "openapi", "--server-url", "https://bot.example"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == openapi_document("https://bot.example")
    assert doc["openapi"] == "3.1.0" and doc["servers"] == [{"url": "https://bot.example"}]
    mcp = await _mcp_tools()
    ops = {p.removeprefix("/tools/"): v["post"] for p, v in doc["paths"].items()}
    assert list(ops) == list(mcp)
    schemas = doc["components"]["schemas"]
    for name, op in ops.items():
        tool = mcp[name]
        body = op["requestBody"]["content"]["application/json"]["schema"]
        assert op["operationId"] == name and op["description"] == tool.description
        assert _norm(body).get("properties") == _norm(tool.input_schema).get("properties")
        out_ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        out = schemas[out_ref.rsplit("/", 1)[1]]
        assert sorted(out["properties"]) == sorted(tool.output_schema["properties"])
    # every $ref resolves inside the document
    text = json.dumps(doc)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}:
        assert ref in schemas, ref
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_no_tool_can_approve_execute_close_pause_or_change_config():
    words = {w for t in TOOLS for w in t.name.split("_")}
    assert not words & {"approve", "execute", "close", "pause", "resume", "emergency", "set", "config", "reject"}
    assert [t.name for t in TOOLS if not t.read_only] == ["propose_trade"]
    assert [t.name for t in TOOLS if t.role == "trader"] == ["propose_trade"]


async def test_building_the_server_leaves_the_process_logging_alone():
    import logging

    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    await _mcp_tools()  # MCPServer() runs logging.basicConfig (a RichHandler on stderr) when root has none
    assert (list(root.handlers), root.level) == before
