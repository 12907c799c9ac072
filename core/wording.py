"""Numbers in sentences for traders: prices at the symbol's own digits.

Why: core writes the alert and outcome sentences that reach phones, and a raw float ("3210.8",
"1.0834999999") reads as a different price than the card's "3210.80" one line above it.
"""
from __future__ import annotations


def price_text(x: float | None, digits: int) -> str:
    if x is None:
        return "—"
    return f"{float(x):.{max(0, int(digits))}f}"


__all__ = ["price_text"]
