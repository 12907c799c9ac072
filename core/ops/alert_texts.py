"""The words of the trade alerts a trader reads on a phone lock screen.

Why a module of its own: the close of a trade is told by the exit executor (every real close) and by
`RangeScalpingAlerts.alert_exit_executed`, and its reason is shown again in /trades. A lock screen
shows the title and the first line only, so the title carries which trade and the result, and the
journal's reason codes (`max_time_in_trade`, `breakeven_stop`) are said in words everywhere alike.
"""
from __future__ import annotations

import time
from datetime import UTC, datetime
from locale import LC_TIME, setlocale

from core.domain.models import ActiveTrade

# journal exit reasons (core.exits.executor: deals and EXIT_KINDS) in a trader's words
EXIT_REASON_WORDS = {
    "stop_loss": "stop loss hit",
    "take_profit": "take profit hit",
    "breakeven_stop": "breakeven stop hit",
    "stop_out": "stopped out by the broker (margin)",
    "closed_outside_bot": "closed outside the bot",
    "range_invalidated": "range broken",
    "max_time_in_trade": "time limit",
    "stalled": "stalled",
    "opposite_edge_reached": "profit taken at the far edge",
    "manual_close": "closed by hand",
    "emergency": "emergency stop",
}


def exit_reason_words(kind: str | None) -> str:
    """`stop_loss` -> 'stop loss hit'; a code this table does not know still loses its underscores."""
    if not kind:
        return "-"
    return EXIT_REASON_WORDS.get(kind, kind.replace("_", " "))


def r_text(r: float) -> str:
    """'+1.25 R'; a loss too small to show reads +0.00 R, not '-0.00 R'."""
    out = f"{r:+.2f} R"
    return "+0.00 R" if out == "-0.00 R" else out


def trade_label(trade: ActiveTrade) -> str:
    """'XAUUSDc LONG #100001': the same three facts name a trade in every alert title."""
    return f"{trade.symbol} {trade.direction.value.upper()} #{trade.ticket}"


def closed_title(trade: ActiveTrade, r: float, money: str | None = None) -> str:
    """'XAUUSDc LONG #100001 closed: -1.01 R, -3.88 USD': which trade and how it ended, in the part a
    lock screen shows."""
    cash = f", {money}" if money else ""
    return f"{trade_label(trade)} closed: {r_text(r)}{cash}"


def closed_text(exit_price: str, r: float, money: str | None, reason_kind: str | None, detail: str = "",
                our_kind: str | None = None, at: float | None = None) -> str:
    """First line the result (price, R, money), second line why in words. `our_kind`: the exit we sent
    when the broker's own SL/TP (`reason_kind`) closed the trade first, so the why does not read as if
    the stop had fired because of our exit's reason."""
    pnl = f", P&L {money}" if money else ""
    why = exit_reason_words(reason_kind)
    if our_kind and our_kind != reason_kind:
        why += f" at the broker before my exit ({exit_reason_words(our_kind)}) went out"
    if detail.startswith("closed by") and reason_kind == "manual_close":
        why = detail  # "closed by user 7" says it all
    elif detail:
        why += f": {detail}"
    return f"Closed at {exit_price}{closed_at_text(at)}: {r_text(r)}{pnl}.\nWhy: {why}."


# A trade's own news (a close, the range breaking under it) reaches the trader's chats like a "high" page,
# whatever its severity: the severity says how it went (a take profit is good news, not a warning),
# the routing says who hears of it.
TRADE_NEWS = frozenset({"exit_executed", "range_invalidated"})


def route_as(kind: str, severity: str) -> str:
    """The severity whose routing an alert follows: trade news at least "high"'s."""
    return "high" if kind in TRADE_NEWS and severity in ("medium", "info") else severity


# How a close went, as a severity: every planned exit (take profit, a stop, the range breaking, the time
# limit) is information, logged at INFO; only a failure to close is critical, and that is its own alert
# (exit_failed). The chat's icon then tells good news from bad (bot.presenter.alert_icon).
CLOSE_SEVERITY = "info"


_CLOSED_AT = "%d %b %H:%M UTC"
_DATETIME_END = 253402300800.0  # 10000-01-01 UTC: datetime's years end before it
# strftime's %b in the C locale, which LC_TIME is unless a program calls setlocale (Python sets LC_CTYPE only)
_C_LOCALES = frozenset({"C", "POSIX"})
_C_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def closed_at_text(t: float | None) -> str:
    """' on 20 May 07:55 UTC': when the trade closed, said in every close alert (a late copy arrives later)."""
    if not t:
        return ""
    t = float(t)
    if t.is_integer() and 0.0 < t < _DATETIME_END:
        # a whole second (deal times are) has the same fields in gmtime as in a UTC datetime, whose strftime
        # hands them to C's strftime; in the C locale that prints them as below. The same text at a fraction of
        # the cost (strftime's locale round trips were most of a close alert's text in the replay). A fraction
        # of a second stays with datetime, which rounds it to microseconds first.
        tm = time.gmtime(t)
        if setlocale(LC_TIME) in _C_LOCALES:
            return f" on {tm.tm_mday:02d} {_C_MONTHS[tm.tm_mon - 1]} {tm.tm_hour:02d}:{tm.tm_min:02d} UTC"
        return " on " + time.strftime(_CLOSED_AT, tm)
    return " on " + datetime.fromtimestamp(t, UTC).strftime(_CLOSED_AT)


def system_error_title(error_type: str) -> str:
    """'broker_timeout' -> 'System error: broker timeout' (the icon already says how severe)."""
    return f"System error: {error_type.replace('_', ' ')}"


__all__ = ["EXIT_REASON_WORDS", "CLOSE_SEVERITY", "TRADE_NEWS", "closed_at_text", "closed_text", "closed_title",
           "exit_reason_words", "r_text", "route_as", "system_error_title", "trade_label"]


def exit_failed_text(symbol: str, ticket: int, error: str, attempts: int | None, trade: ActiveTrade | None,
                     price_of) -> str:
    """The page that asks a human to act: what to do first, and whether a stop still guards the trade
    (said only when known: a trade we do not hold may have none)."""
    tries = f" after {attempts} attempts" if attempts else ""
    if trade is None:
        stop = "Check its stop loss in MetaTrader."
    elif trade.sl:
        stop = f"Its broker-side stop at {price_of(trade.sl)} stays in place."
    else:
        stop = "It has NO broker-side stop."
    return f"MANUAL CLOSE REQUIRED: could not close {symbol} #{ticket}{tries} ({error}). {stop}"
