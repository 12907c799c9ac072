"""Numbers in sentences for traders: prices at the symbol's own digits.

Why: core writes the alert and outcome sentences that reach phones, and a raw float ("3210.8",
"1.0834999999") reads as a different price than the card's "3210.80" one line above it.
"""
from __future__ import annotations


def price_text(x: float | None, digits: int) -> str:
    if x is None:
        return "-"
    return f"{float(x):.{max(0, int(digits))}f}"


def symbol_price(cfg, symbol: str, x: float | None) -> str:
    """`price_text` at `symbol`'s configured digits; a symbol the config does not know prints as is."""
    spec = cfg.symbols.get(symbol) if cfg is not None else None
    if spec is None:
        return "-" if x is None else f"{x:g}"
    return price_text(x, spec.digits)


__all__ = ["price_text", "symbol_price"]
