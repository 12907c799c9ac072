"""`moneybot mcp` (the MCP server, standalone) and `moneybot tools export` (the same tools as schemas).

`moneybot mcp` speaks stdio by default (Claude Desktop, the ChatGPT desktop app, any MCP client launches
it); `--http HOST:PORT` serves streamable HTTP at /mcp behind the bearer-token guard of
`bot.mcp_server.http`. Standalone, it reads the shared store and analyses on its own; its proposals are
queued in the store for the running bot (see `bot.mcp_server.inbox`). Inside `moneybot run` the same
server runs when the config says `mcp.enabled`.
"""
from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser("mcp", help="serve the MCP tools (stdio, or --http HOST:PORT) for ChatGPT, Claude, agents")
    p.add_argument("--http", metavar="HOST:PORT", help="serve streamable HTTP at http://HOST:PORT/mcp instead of "
                                                      "stdio (bearer token MONEYBOT_MCP_TOKEN required)")
    p.set_defaults(func=_run)
    t = sub.add_parser("tools", help="the MCP tools as schemas for other clients")
    tsub = t.add_subparsers(dest="tools_command", metavar="ACTION", required=True)
    e = tsub.add_parser("export", help="print the tool list as OpenAI function tools or an OpenAPI 3.1 document")
    e.add_argument("--format", choices=("openai", "openapi"), default="openai")
    e.add_argument("--server-url", default="http://127.0.0.1:8765",
                   help="OpenAPI: the base URL the custom GPT action calls")
    e.set_defaults(func=_export)


def _export(args) -> int:
    from bot.mcp_server.schema import openai_tools, openapi_document

    doc = openai_tools() if args.format == "openai" else openapi_document(args.server_url)
    print(json.dumps(doc, indent=2))
    return 0


def standalone_backend(cfg, secrets=None):
    """The tools without a bot in this process: the shared store plus this process's own analysis."""
    from bot.mcp_server.backend import StandaloneBackend, file_analyser
    from core.api import Store
    from core.config.paths import resolve_path

    store = Store(resolve_path(cfg.store.path))
    if cfg.broker.kind == "paper":
        analyser = file_analyser(cfg)
    else:  # MT5: a second API client of the terminal; never started, so it neither recovers nor trades
        from core.app import build_service

        analyser = build_service(cfg, secrets, store=store).analyse
    return StandaloneBackend(cfg, store, analyser)


def _run(args) -> int:
    import anyio

    from bot.cli_run import _secrets
    from bot.mcp_server.http import HttpOptions, parse_host_port, serve_http
    from bot.mcp_server.server import build_server
    from core.config.loading import load_config
    from core.config.settings import Secrets

    cfg = load_config(args.config)
    secrets = _secrets(Secrets)
    opts = None
    if args.http:  # refused before anything is opened: no token, or not HOST:PORT
        host, port = parse_host_port(args.http)
        opts = HttpOptions.from_config(cfg, secrets, host, port)
    server = build_server(standalone_backend(cfg, secrets), stdio_role=cfg.mcp.stdio_role)
    if opts is not None:
        print(f"MoneyBot MCP: streamable HTTP at http://{host}:{port}/mcp (bearer token required)", file=sys.stderr)
        anyio.run(serve_http, server, opts)  # Ctrl-C stops it
    else:
        server.run("stdio")
    return 0
