"""Streamable HTTP for the MCP server, behind a guard: bearer token -> role, Origin, rate and size limits.

The guard is a plain ASGI wrapper in front of the SDK's Starlette app, so every request to /mcp is
checked before the SDK parses a byte of it:
- Origin (the MCP spec's DNS-rebinding defence): a browser page's Origin must be in the allow-list;
  the SDK's own Host/Origin check (TransportSecuritySettings) runs behind it as a second layer.
- `Authorization: Bearer <token>`: none -> 401, a wrong one -> 403, both with a bare body. Tokens come
  from env/.env (MONEYBOT_MCP_TOKEN, MONEYBOT_MCP_VIEWER_TOKEN), are compared in constant time, and are
  never logged or echoed: the log names the role, never the token.
- The token's role (viewer or trader, the chat's roles) rides in the request scope to the tools.
- Per-token rate limit (requests per minute, sliding window) -> 429; body over the limit -> 413.
`moneybot mcp --http` refuses to start without a token, and says why for a non-loopback address.
"""
from __future__ import annotations

import contextlib
import hmac
import ipaddress
import time
from collections import deque
from typing import Any

import uvicorn
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.mcp_server.server import ROLE_STATE_KEY
from bot.mcp_server.tools import Role
from core.domain.exceptions import UserFacingError

MCP_PATH = "/mcp"


class HttpOptions(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    tokens: dict[str, Role] = Field(default_factory=dict, repr=False)  # never in a repr or a log
    rate_per_minute: int = Field(default=60, ge=1)
    max_body_bytes: int = Field(default=262144, ge=1024)
    allowed_origins: list[str] = Field(default_factory=list)
    allowed_hosts: list[str] = Field(default_factory=list)

    @classmethod
    def from_config(cls, cfg: Any, secrets: Any, host: str | None = None, port: int | None = None) -> HttpOptions:
        m = cfg.mcp
        tokens: dict[str, Role] = {}
        if getattr(secrets, "mcp_token", None):
            tokens[secrets.mcp_token.get_secret_value()] = m.access_role
        if getattr(secrets, "mcp_viewer_token", None):
            tokens[secrets.mcp_viewer_token.get_secret_value()] = "viewer"
        opts = cls(host=host or m.host, port=m.port if port is None else port, tokens=tokens,
                   rate_per_minute=m.rate_limit_per_minute, max_body_bytes=m.max_request_bytes,
                   allowed_origins=list(m.allowed_origins), allowed_hosts=list(m.allowed_hosts))
        opts.check()
        return opts

    def check(self) -> None:
        if self.tokens:
            return
        if not is_loopback(self.host):
            raise UserFacingError(f"Refusing to serve MCP on {self.host}, a non-loopback address, without a token: "
                                  "set MONEYBOT_MCP_TOKEN in the environment or .env.")
        raise UserFacingError("MCP over HTTP needs a bearer token: set MONEYBOT_MCP_TOKEN in the environment or "
                              ".env (any long random string, e.g. from `python -c \"import secrets; "
                              "print(secrets.token_urlsafe(32))\"`).")

    def origins(self) -> list[str]:
        return self.allowed_origins or [f"http://127.0.0.1:{self.port}", f"http://localhost:{self.port}"]


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserFacingError(f"--http: '{text[:40]}' is not HOST:PORT, e.g. 127.0.0.1:8765.")
    return host.strip("[]") or "127.0.0.1", int(port)


class McpGuard:
    """ASGI wrapper: the checks above, then the SDK app with the caller's role in scope['state']."""

    def __init__(self, app: ASGIApp, opts: HttpOptions, clock=time.monotonic) -> None:
        self.app = app
        self.opts = opts
        self._clock = clock
        self._tokens = [(t.encode(), role) for t, role in opts.tokens.items()]
        self._hits: dict[int, deque[float]] = {}
        self._origins = set(opts.origins())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        origin = headers.get("origin")
        if origin is not None and origin not in self._origins:
            return await _plain(send, 403)
        token_i, role = self._who(headers.get("authorization", ""))
        if token_i == -1:
            return await _plain(send, 401, {"www-authenticate": "Bearer"})
        if role is None:
            return await _plain(send, 403)
        if not self._allow(token_i):
            return await _plain(send, 429, {"retry-after": "60"})
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.opts.max_body_bytes):
            return await _plain(send, 413)
        scope.setdefault("state", {})
        scope["state"][ROLE_STATE_KEY] = role
        await self.app(scope, self._limited(receive), send)

    def _who(self, auth: str) -> tuple[int, Role | None]:
        """(-1, None) without a bearer token; (i, role) for token i; (-2, None) for a wrong one."""
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return -1, None
        given = value.strip().encode()
        found: tuple[int, Role | None] = (-2, None)
        for i, (tok, role) in enumerate(self._tokens):  # every token compared: no timing hint which matched
            if hmac.compare_digest(given, tok):
                found = (i, role)
        return found

    def _allow(self, token_i: int) -> bool:
        now = self._clock()
        q = self._hits.setdefault(token_i, deque())
        while q and q[0] <= now - 60.0:
            q.popleft()
        if len(q) >= self.opts.rate_per_minute:
            return False
        q.append(now)
        return True

    def _limited(self, receive: Receive) -> Receive:
        """A body sent without Content-Length (chunked) is counted as it arrives."""
        seen = 0
        limit = self.opts.max_body_bytes

        async def wrapped():
            nonlocal seen
            msg = await receive()
            if msg.get("type") == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    return {"type": "http.disconnect"}
            return msg

        return wrapped


async def _plain(send: Send, status: int, extra: dict[str, str] | None = None) -> None:
    """A refusal with no details: the status says enough, and nothing of the request is echoed."""
    body = {401: b"Unauthorized", 403: b"Forbidden", 413: b"Request too large", 429: b"Too many requests"}[status]
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def guarded_app(server: Any, opts: HttpOptions) -> McpGuard:
    hosts = {f"{h}:{opts.port}" for h in ("127.0.0.1", "localhost", opts.host)} | set(opts.allowed_hosts)
    security = TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=sorted(hosts),
                                         allowed_origins=opts.origins())
    app = server.streamable_http_app(streamable_http_path=MCP_PATH, max_request_body_size=opts.max_body_bytes,
                                     transport_security=security, host=opts.host)
    return McpGuard(app, opts)


class _QuietServer(uvicorn.Server):
    """Inside `moneybot run` the runner owns SIGINT/SIGTERM: uvicorn must not take them over."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def http_server(server: Any, opts: HttpOptions, *, own_signals: bool = True) -> uvicorn.Server:
    config = uvicorn.Config(guarded_app(server, opts), host=opts.host, port=opts.port, log_level="warning",
                            access_log=False, lifespan="on", timeout_graceful_shutdown=3)
    return uvicorn.Server(config) if own_signals else _QuietServer(config)


async def serve_http(server: Any, opts: HttpOptions) -> None:
    await http_server(server, opts).serve()
