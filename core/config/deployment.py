"""The config sections about where MoneyBot runs, not how it trades: the broker (paper or MT5), the store,
the MCP front door and Telegram. Global only: a symbol cannot override them (`core.config.model.GLOBAL_ONLY`)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from core.config.sections import _Section


class PaperBrokerConfig(_Section):
    db_path: str = "data/paper_broker.sqlite"
    slippage_points: float = Field(default=0, ge=0)
    commission_per_lot: float = Field(default=0, ge=0)
    start_balance: float = Field(default=10000, gt=0)
    speed: float = Field(default=60, gt=0)


class MT5Config(_Section):
    path: str | None = None
    timeout_ms: int = Field(default=10000, ge=100)
    # MT5 reports server time; None = learn it from fresh ticks (see docs/brokers.md)
    server_utc_offset_hours: float | None = Field(default=None, ge=-14, le=14)


class Broker(_Section):
    kind: Literal["paper", "mt5"] = "paper"
    paper: PaperBrokerConfig = PaperBrokerConfig()
    mt5: MT5Config = MT5Config()


class Store(_Section):
    path: str = "data/moneybot.sqlite"


class Mcp(_Section):
    """The MCP front door (bot/mcp_server). Tokens are secrets: MONEYBOT_MCP_TOKEN / _VIEWER_TOKEN in env/.env."""

    enabled: bool = False  # serve MCP over HTTP inside `moneybot run` (and take queued standalone proposals)
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    access_role: Literal["viewer", "trader"] = "trader"  # the role MONEYBOT_MCP_TOKEN grants
    stdio_role: Literal["viewer", "trader"] = "trader"  # stdio has no token: its launcher owns the .env
    rate_limit_per_minute: int = Field(default=60, ge=1)
    max_request_bytes: int = Field(default=262144, ge=1024)  # a 100k-char argument is still a tool error
    allowed_origins: list[str] = Field(default_factory=list)  # empty: http://127.0.0.1:PORT, http://localhost:PORT
    allowed_hosts: list[str] = Field(default_factory=list)  # Host headers besides 127.0.0.1/localhost (a proxy's name)


class Telegram(_Section):
    """Telegram settings that are not secrets (the token stays in .env). `base_url`: a self-hosted Bot API
    server's endpoint (e.g. http://127.0.0.1:8081/bot); None is api.telegram.org. The environment's
    MONEYBOT_TELEGRAM_BASE_URL, when set, wins."""

    base_url: str | None = None
