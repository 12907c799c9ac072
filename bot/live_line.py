"""One line under a /scalp card: the live quote, the entry check on it, and the analysis' age."""
from __future__ import annotations

from typing import Any


def live_line(q: Any, digits: int) -> str:
    if q is None:
        return "Live quote: unavailable right now (Approve checks the price again before any order)."
    age = q.analysis_age_seconds
    aged = f"{age:.0f} s" if age < 120 else f"{age / 60:.0f} min"
    line = f"Live {q.bid:.{digits}f} / {q.ask:.{digits}f} · analysis {aged} old"
    if q.entry_ok is True:
        line += f" · entry still in reach ({q.slippage_pct:.2f}% away)"
    elif q.entry_ok is False:
        line += " · price has left the entry: Approve will re-check and refuse if it is still away"
    return line
