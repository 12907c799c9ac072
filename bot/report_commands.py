"""The read-only report commands: /status, /trades, /metrics, /config, /health and /help.

Split from `bot.commands` (the router: parsing, authorization gate, error guard, /scalp and its card);
these handlers only read the service and word its answer. `ReportCommands` is a mixin of
`CommandRouter` and uses its `service`, `cfg`, `_digits`, `_int` and `_symbol`.
"""
from __future__ import annotations

from typing import Any

from bot import presenter, trade_reports
from bot import service_facts as facts
from bot.command_spec import USAGE
from bot.command_spec import maybe_await as _maybe
from bot.health_text import health_text
from bot.replies import Reply

MAX_TRADES = 50
MAX_DAYS = 3650


class ReportCommands:
    """The report handlers of `CommandRouter` (see the module docstring)."""

    async def _status(self, user_id: Any, args: list[str]) -> Reply:
        self.service.authorize(user_id, "status")
        rows = await _maybe(self.service.status())
        return Reply(text=trade_reports.status_text(list(rows), self._digits, now=self._now(),
                                                    currency=await facts.account_currency(self.service)))

    def _now(self) -> float | None:
        clock = getattr(self.service, "clock", None)
        try:
            return float(clock.now()) if clock is not None else None
        except Exception:
            return None

    async def _trades(self, user_id: Any, args: list[str]) -> Reply:
        if len(args) > 1:
            return Reply(text=USAGE["trades"], kind="usage")
        n = 5 if not args else self._int(args[0], 1, MAX_TRADES)
        if n is None:
            return Reply(text=USAGE["trades"], kind="usage")
        self.service.authorize(user_id, "trades")
        trades = await _maybe(self.service.recent_trades(n))
        return Reply(text=trade_reports.trades_text(list(trades), self._digits,
                                                    currency=await facts.account_currency(self.service)))

    async def _metrics(self, user_id: Any, args: list[str]) -> Reply:
        if len(args) > 1:
            return Reply(text=USAGE["metrics"], kind="usage")
        days = None if not args else self._int(args[0], 1, MAX_DAYS)
        if args and days is None:
            return Reply(text=USAGE["metrics"], kind="usage")
        self.service.authorize(user_id, "metrics")
        report = await _maybe(self.service.metrics(days))
        return Reply(text=trade_reports.metrics_text(report, days, currency=await facts.account_currency(self.service)))

    async def _config(self, user_id: Any, args: list[str]) -> Reply:
        if len(args) > 1:
            return Reply(text=USAGE["config"], kind="usage")
        symbol = self._symbol(args[0]) if args else None
        self.service.authorize(user_id, "config")
        eff = await _maybe(self.service.effective_config(symbol))
        version = getattr(self.service, "config_version", "") or getattr(self.cfg, "version", "")
        return Reply(text=presenter.config_text(eff, str(version), symbol))

    async def _health(self, user_id: Any, args: list[str]) -> Reply:
        self.service.authorize(user_id, "health")
        report = await _maybe(self.service.health())
        return Reply(text=health_text(report))

    async def _help(self, user_id: Any, args: list[str]) -> Reply:
        return Reply(text=presenter.HELP)
