"""The language-model front door: an MCP server over the same TradingService as the chats.

A model may analyse, read and *propose*; only a human tap in the chat executes. `tools.py` holds the
pydantic input/output models (the one source of the MCP tool list and of `moneybot tools export`),
`backend.py` what each tool does inside `moneybot run` and in a standalone `moneybot mcp`, `server.py`
the MCPServer wiring, `http.py` the HTTP guard (bearer tokens, roles, rate and size limits, Origin).
Named `mcp_server` rather than `mcp` so that running a file from bot/ never shadows the SDK package.
"""
