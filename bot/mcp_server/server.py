"""The MCPServer (official `mcp` SDK 2.x): the tools of `tools.py`, a config resource and a prompt.

Each tool's MCP parameters are generated from its pydantic input model (same names, types, bounds and
descriptions), and the body validates the arguments with that model again, so the MCP schema, the
exported OpenAI/OpenAPI schemas and what is enforced are one thing. A `UserFacingError` (unknown symbol,
no such proposal, not viable now) becomes a tool error with its one-line message; anything else is the
SDK's generic "Error executing tool" with the traceback kept in the log. Either way the server serves on.
"""
from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from bot.mcp_server.tools import BY_NAME, SCALP_CHECK_PROMPT, TOOLS, Role, ToolSpec
from core.domain.exceptions import UserFacingError

log = logging.getLogger(__name__)

CONFIG_URI = "moneybot://config"
ROLE_STATE_KEY = "moneybot_mcp_role"
INSTRUCTIONS = ("MoneyBot analyses range scalps on MetaTrader 5 symbols. You may analyse, read trades and "
                "metrics, and propose a trade; a proposal is a card in the traders' chat that only a human "
                "can approve. You cannot approve, execute, close or pause anything.")


def request_role(ctx: Context | None, default: Role) -> Role:
    """The caller's role: set per request by the HTTP guard from the bearer token; stdio has no token,
    so it gets the configured `default` (the person who launched the process owns its .env anyway)."""
    if ctx is None:
        return default
    try:
        request = ctx.request_context.request
    except (ValueError, AttributeError):
        return default
    state = getattr(request, "scope", {}).get("state") if request is not None else None
    role = state.get(ROLE_STATE_KEY) if isinstance(state, dict) else None
    return role if role in ("viewer", "trader") else default


def _field_param(name: str, field: Any) -> inspect.Parameter:
    ann = Annotated[(field.annotation, *field.metadata, Field(description=field.description))]
    default = inspect.Parameter.empty if field.is_required() else field.default
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann)


def one_line(err: ValidationError) -> str:
    """A pydantic error as the model should read it: which argument, what is wrong (never the value)."""
    parts = []
    for e in err.errors()[:3]:
        where = ".".join(str(x) for x in e.get("loc", ())) or "arguments"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return "Invalid arguments: " + "; ".join(parts) + "."


def make_tool_fn(spec: ToolSpec, handler: Callable[[BaseModel], Any], default_role: Role) -> Callable[..., Any]:
    async def tool(ctx: Context, **kwargs: Any) -> Any:
        if spec.role == "trader" and request_role(ctx, default_role) != "trader":
            raise ToolError("Your token has the viewer role: it may analyse and read, not propose trades.")
        try:
            inp = spec.input.model_validate(kwargs)
        except ValidationError as e:
            raise ToolError(one_line(e)) from None
        try:
            return await handler(inp)
        except UserFacingError as e:
            raise ToolError(e.message) from None

    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    params += [_field_param(n, f) for n, f in spec.input.model_fields.items()]
    tool.__signature__ = inspect.Signature(params, return_annotation=spec.output)  # type: ignore[attr-defined]
    tool.__annotations__ = {p.name: p.annotation for p in params} | {"return": spec.output}
    tool.__name__ = spec.name
    tool.__doc__ = spec.description
    return tool


def handlers(backend: Any) -> dict[str, Callable[[Any], Any]]:
    return {
        "analyse_range_scalp_opportunity": backend.analyse,
        "list_symbols": lambda _i: _symbols(backend),
        "get_open_trades": lambda _i: backend.open_trades(),
        "get_closed_trades": lambda i: backend.closed_trades(i.n),
        "get_metrics": lambda i: backend.metrics(i.days),
        "get_health": lambda _i: backend.health(),
        "propose_trade": lambda i: backend.propose(i.symbol, i.strategy),
        "get_proposal": lambda i: backend.proposal(i.proposal_id),
    }


async def _symbols(backend: Any):
    from bot.mcp_server.answers import symbols_output

    return symbols_output(backend.cfg)


class MoneyBotMCP(MCPServer):
    """The SDK server, with argument errors as one line naming the argument (pydantic's multi-line report,
    with the rejected value in it, is the SDK default)."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as e:
            if isinstance(e.__cause__, ValidationError) and not isinstance(e, UnexpectedToolError):
                raise ToolError(f"Error executing tool {name}: {one_line(e.__cause__)}") from e.__cause__
            raise


def build_server(backend: Any, *, stdio_role: Role = "trader") -> MCPServer:
    root = logging.getLogger()
    kept, level = list(root.handlers), root.level
    server = MoneyBotMCP("moneybot", title="MoneyBot range scalping", instructions=INSTRUCTIONS,
                       version="0.1.0", log_level="WARNING")
    root.handlers[:] = kept  # the SDK runs logging.basicConfig: it must not restyle the process's logging
    root.setLevel(level)
    table = handlers(backend)
    assert set(table) == set(BY_NAME), "every tool in tools.TOOLS needs a handler"
    for spec in TOOLS:
        server.add_tool(make_tool_fn(spec, table[spec.name], stdio_role), name=spec.name, description=spec.description,
                        annotations=ToolAnnotations(read_only_hint=spec.read_only, destructive_hint=False,
                                                    open_world_hint=False),
                        structured_output=True)

    @server.resource(CONFIG_URI, name="effective_config", mime_type="application/json",
                     description="The effective MoneyBot config (secrets masked; tokens live only in env/.env).")
    def effective_config() -> str:
        return json.dumps(backend.effective_config(), indent=1, sort_keys=True)

    @server.prompt(name="scalp_check", description="How to check a symbol for a range scalp and present the "
                                                   "result to a trader.")
    def scalp_check(symbol: str) -> str:
        return SCALP_CHECK_PROMPT.format(symbol=symbol)

    @server.custom_route("/tools/{name}", methods=["POST"], include_in_schema=False)
    async def rest_tool(request: Any) -> Any:
        """The OpenAPI (custom GPT action) face of the same tools; the HTTP guard has set the role."""
        from starlette.responses import JSONResponse

        spec = BY_NAME.get(request.path_params.get("name", ""))
        state = request.scope.get("state")
        role = state.get(ROLE_STATE_KEY) if isinstance(state, dict) else None
        if role is None:
            return JSONResponse({"error": "Unauthorized"}, status_code=401)
        if spec is None:
            return JSONResponse({"error": "No such tool."}, status_code=404)
        if spec.role == "trader" and role != "trader":
            return JSONResponse({"error": "Your token has the viewer role: it may not propose trades."}, 403)
        try:
            body = await request.json()
            inp = spec.input.model_validate(body if body is not None else {})
        except ValidationError as e:
            return JSONResponse({"error": one_line(e)}, status_code=400)
        except ValueError:
            return JSONResponse({"error": "The body must be a JSON object."}, status_code=400)
        try:
            out = await table[spec.name](inp)
        except UserFacingError as e:
            return JSONResponse({"error": e.message}, status_code=400)
        return JSONResponse(out.model_dump(mode="json"))

    return server
