"""Numbers and names in sentences for traders: prices at the symbol's own digits, who did something.

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


# The local console is operated by whoever runs the process; chat platforms never use negative ids,
# so this id cannot be spoofed from Telegram or Discord.
CONSOLE_USER_ID = -1


def actor_label(who: int | str | None) -> str:
    """How a trader reads who did something: 'user 123', 'the console', or a tool's own name ('cli').

    Ids are kept as ids in the store; this is only for sentences (a bare '-1' reads as a bug)."""
    uid = as_user_id(who)
    if uid == CONSOLE_USER_ID:
        return "the console"
    if uid is not None:
        return f"user {uid}"
    return str(who or "someone")


def as_user_id(user_id: int | str | None) -> int | None:
    try:
        return int(str(user_id).strip()) if user_id is not None else None
    except ValueError:
        return None


__all__ = ["CONSOLE_USER_ID", "actor_label", "price_text", "symbol_price"]
