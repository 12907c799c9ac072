"""Pre-trade checks on an order: is the price still the proposed one, are the stops legal, is the lot valid.

Pure functions of prices and the broker's symbol rules, so they are unit-tested without a broker and
shared by live execution and backtests.
"""
from __future__ import annotations

import math
import sys

from pydantic import BaseModel

from core.analysis.facade import configured_calendar
from core.analysis.filters.risk_filters import session_refusal
from core.brokers.base import SymbolInfo
from core.data.sources.news import symbol_currencies
from core.domain.models import Direction
from core.domain.sessions import active_sessions


class PriceCheck(BaseModel):
    ok: bool
    current_price: float
    slippage_pct: float
    message: str


def _fmt(x: float, digits: int) -> str:
    return f"{x:.{digits}f}"


# A stop or target farther than this fraction of the price is not a range scalp but a corrupt number
# (a huge float, a subnormal rounded to 0 at the broker's digits): refused rather than sent.
MAX_DISTANCE_FRACTION = 0.5


def usable_price(x) -> bool:
    """Finite, positive and a normal float. Every comparison with NaN is false, so a check written as
    `if bad: refuse` lets NaN through; this is asked the other way round (`if not usable: refuse`). A
    subnormal (5e-324) is refused too: it rounds to 0.0 at any broker's digits, i.e. "no stop"."""
    try:
        v = float(x)
    except (TypeError, ValueError, OverflowError):
        return False
    return math.isfinite(v) and v >= sys.float_info.min


def _shown(x) -> str:
    try:
        return f"{float(x):.6g}"
    except (TypeError, ValueError, OverflowError):
        return repr(x)[:24]


def quote_problem(bid, ask) -> str | None:
    """Why a quote cannot price an order (one sentence), or None when it can."""
    for name, v in (("bid", bid), ("ask", ask)):
        if not usable_price(v):
            return f"the broker's {name} is {_shown(v)}, not a usable price"
    if not ask >= bid:
        return f"the broker's quote is crossed (bid {_shown(bid)} above ask {_shown(ask)})"
    if not (ask - bid) <= MAX_DISTANCE_FRACTION * bid:
        return f"the broker's spread ({_shown(ask - bid)}) is implausibly wide for a price of {_shown(bid)}"
    return None


# A quote older than this, by our clock, is not the market now: a corrupt time (5e-324 is 1970) or a feed
# that stopped days ago. A weekend is under three days; no live quote is a week old.
MAX_QUOTE_AGE_SECONDS = 7 * 86400


def tick_problem(tick, now: float) -> str | None:
    """Why a broker tick cannot price an order: a bad bid/ask, or a time that is not a moment (NaN, 0, a
    subnormal, a day ahead of our clock or a week behind it: a corrupt packet, not a quote)."""
    t = getattr(tick, "time", None)
    try:
        ok_time = usable_price(t) and now - MAX_QUOTE_AGE_SECONDS <= float(t) <= now + 86400
    except (TypeError, ValueError, OverflowError):
        ok_time = False
    if not ok_time:
        return f"the broker's quote time is {_shown(t)}, not a valid time for a quote at {_shown(now)}"
    return quote_problem(getattr(tick, "bid", None), getattr(tick, "ask", None))


def order_price_problem(direction: Direction, price: float, entry: float, sl: float, tp: float,
                        atr: float | None) -> str | None:
    """Why the proposal's numbers cannot become an order at `price` (one sentence), or None.

    Entry, SL, TP and ATR must each be a usable price, the SL and TP on their own sides of the price,
    and the stop distance finite, positive and less than half the price: anything else is corrupt data
    (a NaN bar, an overflow), and an order built on it could go out without a real stop."""
    for name, v in (("current price", price), ("proposed entry", entry), ("stop loss", sl), ("take profit", tp),
                    ("ATR", atr)):
        if not usable_price(v):
            return f"the {name} is {_shown(v)}, not a usable price"
    if not abs(entry - price) <= MAX_DISTANCE_FRACTION * price:
        return f"the proposed entry ({_shown(entry)}) is more than half the price away from {_shown(price)}"
    if not atr < price:
        return f"the ATR ({_shown(atr)}) is not smaller than the price ({_shown(price)})"
    sign = direction.sign
    stop_distance = (price - sl) * sign
    if not (math.isfinite(stop_distance) and stop_distance > 0):
        return f"the stop distance ({_shown(stop_distance)}) is not a positive number"
    if not stop_distance <= MAX_DISTANCE_FRACTION * price:
        return f"the stop distance ({_shown(stop_distance)}) is more than half the price ({_shown(price)})"
    target = (tp - price) * sign
    if not (math.isfinite(target) and target > 0):
        return f"the take profit ({_shown(tp)}) is not beyond the price ({_shown(price)})"
    if not target <= MAX_DISTANCE_FRACTION * price:
        return f"the take profit ({_shown(tp)}) is more than half the price away from {_shown(price)}"
    return None


def validate_entry_price(
    direction: Direction, proposed_entry: float, bid: float, ask: float, max_slippage_pct: float, digits: int = 5
) -> PriceCheck:
    """Refuse to enter when price has left the proposed entry by more than `max_slippage_pct` %, or when
    the quote or the entry is not a usable price (NaN, inf, 0, negative, subnormal): fail closed."""
    current = ask if direction is Direction.LONG else bid
    bad = quote_problem(bid, ask) or (None if usable_price(proposed_entry)
                                      else f"the proposed entry is {_shown(proposed_entry)}, not a usable price")
    if bad:
        return PriceCheck(ok=False, current_price=current if usable_price(current) else 0.0, slippage_pct=math.inf,
                          message=f"I did not trade: {bad}.")
    slip = abs(current - proposed_entry) / proposed_entry * 100
    if not slip <= max_slippage_pct:  # NaN-proof: a NaN slippage refuses
        way = "up" if current > proposed_entry else "down"
        return PriceCheck(
            ok=False, current_price=current, slippage_pct=slip,
            message=(
                f"Price has moved {way} {slip:.2f}% since the proposal (entry {_fmt(proposed_entry, digits)}, "
                f"now {_fmt(current, digits)}), more than the {max_slippage_pct:g}% allowed, so I did not trade."
            ),
        )
    return PriceCheck(ok=True, current_price=current, slippage_pct=slip, message="price is still at the entry")


def adjust_stops(
    direction: Direction, price: float, sl: float, tp: float, info: SymbolInfo, spread: float = 0.0
) -> tuple[float, float, list[str]]:
    """Keep the strategy's SL/TP but push them out to the broker's minimum distance where needed."""
    sign = direction.sign
    min_dist = (info.trade_stops_level + 1) * info.point + spread if info.trade_stops_level else 0.0
    # with no stops level the SL must still clear the spread: a long's stop is hit by the bid, not the ask
    sl_min = min_dist or spread + info.point
    notes = []
    if (price - sl) * sign < sl_min:
        sl = price - sign * sl_min
        notes.append(f"SL widened to the broker's stops level ({info.trade_stops_level} points)" if min_dist
                     else "SL widened to clear the spread")
    if tp and min_dist and (tp - price) * sign < min_dist:
        tp = price + sign * min_dist
        notes.append(f"TP moved out to the broker's stops level ({info.trade_stops_level} points)")
    return round(sl, info.digits), round(tp, info.digits), notes


def normalise_lot(lot: float, info: SymbolInfo) -> float:
    step = info.volume_step or 0.01
    n = max(round(lot / step), 1)
    vol = max(n * step, info.volume_min)
    return round(min(vol, info.volume_max), 8)


def news_blackout(calendar, symbol: str, currencies, now: float, news_cfg) -> str | None:
    """Why `symbol` may not be entered at `now` for news (one sentence), or None.

    The analysis checks the blackout when it proposes; the order goes out when a human approves, which
    on an accelerated paper replay can be hours of market later. A calendar that does not cover `now`
    says nothing (the analysis already warned that news was not checked)."""
    if calendar is None or not news_cfg.enabled or not calendar.covers(now):
        return None
    before, after = news_cfg.blackout_minutes_before, news_cfg.blackout_minutes_after
    events = calendar.between(now - after * 60, now + before * 60, currencies=symbol_currencies(symbol, currencies),
                              impacts=news_cfg.impacts)
    if not events:
        return None
    e = events[0]
    mins = (e.time - now) / 60.0
    when = f"is due in {mins:.0f} minutes" if mins >= 0 else f"came out {-mins:.0f} minutes ago"
    return (f"{e.impact}-impact {e.currency} news '{e.title}' {when}; no new range trades {before} minutes "
            f"before to {after} minutes after it")


def news_blackout_now(cfg, symbol: str, clock, calendar_of=None) -> str | None:
    """`news_blackout` for `symbol` at `clock.now()` with the configured calendar (cached; never raises).

    `calendar_of(symbol)`, when given, is the calendar instead of `configured_calendar`'s: a replay hands
    over the one it read for the whole run (`core.backtest.live`), saving a path resolve and a stat of the
    file on every send. Live passes None."""
    tcfg, spec = cfg.for_symbol(symbol), cfg.symbols.get(symbol)
    calendar = configured_calendar(tcfg, clock)[0] if calendar_of is None else calendar_of(symbol)
    return news_blackout(calendar, symbol, spec.currencies if spec else None, clock.now(), tcfg.news)


def session_block_now(cfg, symbol: str, now: float) -> str | None:
    """Why `symbol` may not be entered at `now` for its sessions (the analysis' own session rule), or None.

    Like the news blackout, checked again at the send: an approval can come hours of market after the
    proposal on an accelerated paper replay (past the session's end, into the evening before a weekend).
    The rule's refusal alone (`session_refusal`, which `check_session_filters` is built on): no context,
    result model or pass reason is made only to be thrown away on every order."""
    spec = cfg.symbols.get(symbol)
    if spec is None:  # not a configured symbol: nothing to judge it by (the analysis refuses it anyway)
        return None
    sessions = cfg.for_symbol(symbol).sessions
    refusal = session_refusal(symbol, sessions, spec.trades_weekends, now, active_sessions(sessions, now))
    return None if refusal is None else refusal[1]


def time_rules_block(cfg, symbol: str, clock, calendar_of=None) -> str | None:
    """The analysis' time rules (sessions, then the news blackout) at the send, or None if both pass."""
    return session_block_now(cfg, symbol, clock.now()) or news_blackout_now(cfg, symbol, clock, calendar_of)
