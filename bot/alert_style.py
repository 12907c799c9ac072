"""The icon of an alert, by what happened (issue #19): a take profit is good news, not a warning.

Split from `bot.presenter` (which renders the alert): the severity routes an alert and sets its log level
in core; the icon a trader sees first also tells a profit from a loss, which the severity does not.
"""
from __future__ import annotations

import re

from core.domain.models import Alert

SEVERITY_ICON = {"critical": "🚨", "high": "⚠️", "medium": "🔔", "info": "ℹ️"}
_R_IN_TITLE = re.compile(r"closed: ([+-]\d+(?:\.\d+)?) R")


def alert_icon(alert: Alert) -> str:
    """By what happened: a close in profit (a take profit) is good news ✅, a loss 🔻, another close or a
    range breaking under a trade is information ℹ️; failures keep their severity's icon (🚨 critical)."""
    if alert.kind == "exit_executed" and alert.severity in ("info", "medium"):
        r = _alert_r(alert)
        return "✅" if r is not None and r > 0 else "🔻" if r is not None and r < 0 else "ℹ️"
    return SEVERITY_ICON.get(alert.severity, "🔔")


def _alert_r(alert: Alert) -> float | None:
    if alert.trade is not None and alert.exit_price is not None:
        try:
            return float(alert.trade.r_multiple(alert.exit_price))
        except Exception:  # noqa: BLE001 - no R, no verdict
            return None
    m = _R_IN_TITLE.search(alert.title)  # a copy without its trade: the R its title states
    return float(m.group(1)) if m else None
