"""The MCP tools as schemas for clients that do not speak MCP, generated from the same pydantic models.

- `openai_tools()`: the OpenAI function-calling tool list (`{"type": "function", "function": {...}}`).
- `openapi_document(url)`: OpenAPI 3.1 for a custom GPT action: one `POST /tools/<name>` per tool, which
  the HTTP server answers (`rest.py`) behind the same bearer-token guard as /mcp.
Both read `tools.TOOLS`, the table the MCP server is built from, so none of the three can drift
(tests/test_mcp_schema.py compares them with the live MCP tool list).
"""
from __future__ import annotations

import copy
from typing import Any

from bot.mcp_server.tools import TOOLS, ToolSpec


def input_schema(spec: ToolSpec) -> dict[str, Any]:
    schema = spec.input.model_json_schema()
    schema.pop("title", None)
    schema.pop("description", None)
    schema.setdefault("properties", {})
    return schema


def openai_tools() -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": t.name, "description": t.description,
                                              "parameters": input_schema(t)}} for t in TOOLS]


def _lift_defs(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """Move a model schema's $defs into components/schemas and point its $refs there."""
    schema = copy.deepcopy(schema)
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = _rewrite(sub)
    return _rewrite(schema)


def _rewrite(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (v.replace("#/$defs/", "#/components/schemas/") if k == "$ref" and isinstance(v, str)
                    else _rewrite(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite(x) for x in node]
    return node


def openapi_document(server_url: str = "http://127.0.0.1:8765") -> dict[str, Any]:
    components: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for t in TOOLS:
        out_name = t.output.__name__
        components[out_name] = _lift_defs(t.output.model_json_schema(), components)
        paths[f"/tools/{t.name}"] = {"post": {
            "operationId": t.name,
            "summary": t.description.split(". ")[0][:120],
            "description": t.description,
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": _lift_defs(input_schema(t), components)}}},
            "responses": {
                "200": {"description": "The tool's answer",
                        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{out_name}"}}}},
                "400": {"description": "Bad arguments, unknown symbol or proposal: one line in `error`"},
                "401": {"description": "No bearer token"},
                "403": {"description": "Wrong token, or a viewer token on propose_trade"},
                "429": {"description": "Rate limit"},
            },
        }}
    return {
        "openapi": "3.1.0",
        "info": {"title": "MoneyBot range scalping", "version": "0.1.0",
                 "description": "Analyse, read and propose range scalps. A proposal only posts a card to the "
                                "traders' chat: a human taps Approve to execute. Nothing here executes."},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }
