"""The small formatters every chat text shares: prices, money with its unit, times, durations, plurals,
and shortening at a word boundary. Split from `bot.presenter` so the card, the /health text and the
trade reports (`bot.health_text`, `bot.trade_reports`) word numbers and times the same way.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from core.domain.models import Direction
from core.domain.wording import price_text


def price(x: float | None, digits: int = 2) -> str:
    return price_text(x, digits)


def plural(n: int, word: str) -> str:
    """'1 trade', '5 trades': a phone card should read like a sentence, not like 'trade(s)'."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def money(x: float | None, currency: str = "", sign: str = "+") -> str:
    """A money figure with its unit: on a cent account (USC) 1.00 is a cent, so a bare number misleads."""
    if x is None:
        return "-"
    return f"{x:{sign}.2f} {currency}".rstrip()


def hhmm(t: float | None) -> str:
    if not t:
        return "-"
    return datetime.fromtimestamp(float(t), UTC).strftime("%d %b %H:%M UTC")


def duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "-"
    m = int(seconds // 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m"


def _wall(seconds: float) -> str:
    """120 -> '2 min', 90 -> '90 s': an offer window as /config states it."""
    s = float(seconds)
    return f"{s / 60:g} min" if s >= 60 and s % 60 == 0 else f"{s:g} s"


def _arrow(d: Direction) -> str:
    return "LONG ▲" if d is Direction.LONG else "SHORT ▼"


def _short(text: str, n: int = 90) -> str:
    """At most n characters, shortened at a word boundary: a word cut in half ("the rang…") reads as a bug."""
    if len(text) <= n:
        return text
    cut = text[: n - 1]
    if not (cut.endswith(" ") or text[n - 1] == " "):  # the cut falls inside a word: drop that word
        space = cut.rfind(" ")
        if space > n // 2:
            cut = cut[:space]
    return cut.rstrip(" ,;:·-") + "…"


def _wrapped(prefix: str, text: str, width: int = 90) -> list[str]:
    """A long note as whole lines (never cut mid-word), continued under its first word."""
    import textwrap

    return textwrap.wrap(text, width=width, initial_indent=prefix, subsequent_indent=" " * len(prefix),
                         break_long_words=False, break_on_hyphens=False) or [prefix.rstrip()]


def _mins(m: float | None) -> str:
    return "?" if m is None else f"{m * 60:.0f}s" if m < 1 else f"{m:.0f} min"


def _kv(obj: Any, limit: int = 40) -> str:
    data = obj.model_dump(mode="json") if hasattr(obj, "model_dump") else obj
    if isinstance(data, Mapping):
        lines = []
        for k, v in list(data.items())[:limit]:
            if isinstance(v, dict | list):
                v = json.dumps(v, default=str, separators=(",", ":"))
                v = v if len(v) <= 80 else v[:77] + "..."
            lines.append(f"{k}: {v}")
        return "\n".join(lines)
    return str(data)
