"""What the chat layer needs from core and accepts from users: the service Protocol, usage lines, parsing.

Kept apart from the router so adapters and tests can parse and validate without pulling in charts.
"""
from __future__ import annotations

import inspect
import unicodedata
from typing import Any, Protocol

from core.domain.models import AnalysisResult, TradeProposal


class Service(Protocol):
    """Exactly the `TradingService` methods the chat layer calls (see docs/architecture.md)."""

    async def analyse(self, symbol: str) -> AnalysisResult: ...
    async def propose(self, symbol: str) -> tuple[AnalysisResult, list[TradeProposal]]: ...
    async def approve(self, proposal_id: str, user_id: int) -> Any: ...
    async def reject(self, proposal_id: str, user_id: int) -> Any: ...
    def status(self) -> list[Any]: ...
    def recent_trades(self, n: int) -> list[Any]: ...
    async def close_trade(self, ticket: int, user_id: int) -> Any: ...
    def pause(self, user_id: int) -> Any: ...
    def resume(self, user_id: int) -> Any: ...
    async def emergency(self, user_id: int) -> Any: ...
    def metrics(self, days: int | None) -> Any: ...
    def effective_config(self, symbol: str | None) -> dict: ...
    def health(self) -> Any: ...
    def authorize(self, user_id: int, action: str) -> Any: ...


USAGE = {
    "scalp": "Usage: /scalp SYMBOL (e.g. /scalp XAUUSDc)",
    "trades": "Usage: /trades [n] – n between 1 and 50 (default 5)",
    "close": "Usage: /close TICKET (the number shown in /status)",
    "metrics": "Usage: /metrics [days] – a whole number of days from 1 to 3650, e.g. /metrics 30",
    "config": "Usage: /config [SYMBOL]",
    "backtest": "Usage: /backtest SYMBOL [days] – whole days from 1 to 3650, default 30 (e.g. /backtest EURUSDc 30)",
    # not commands, but what a trader tries first: approvals are buttons, so a typed id cannot be mistyped
    "approve": "There is no /approve or /reject: tap ✅ Approve or ✖ Reject under a /scalp card.",
}
# The authorization action each command needs (core.trading.authz names); /scalp works for viewers (no buttons).
ACTIONS = {"close": "close", "pause": "pause", "resume": "resume", "emergency": "emergency"}
NO_ARGS = ("status", "pause", "resume", "emergency", "health", "help", "start")


async def maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def clip(text: str, n: int = 24) -> str:
    """Echo user input back safely: printable, short (no one pastes a novel into an error message)."""
    text = "".join(ch for ch in text if ch.isprintable())
    return text if len(text) <= n else text[: n - 1] + "…"


CONTROL_CHARS_REPLY = ("Your message contains control characters (such as NUL or an escape code), so I ignored it. "
                       "Type the command again, e.g. /scalp XAUUSDc.")


def has_control_chars(text: Any) -> bool:
    """True when `text` holds a C0/C1 control character other than the tab and line breaks a chat client
    may add: such input is refused whole rather than cleaned (a symbol with a NUL is not 'nearly' XAUUSDc)."""
    return isinstance(text, str) and any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r" for ch in text)


def parse_command(text: str) -> tuple[str, list[str]] | None:
    """`/Scalp@MoneyBot btcusdc` -> ("scalp", ["btcusdc"]); None when the text is not a command."""
    if not isinstance(text, str):
        return None
    parts = text.strip().split()
    if not parts or not parts[0].startswith("/") or len(parts[0]) < 2:
        return None
    name = parts[0][1:].split("@", 1)[0].lower()
    return name, parts[1:]
