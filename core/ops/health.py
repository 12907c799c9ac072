"""/health: what the service knows about itself, plus the outside links it cannot see on its own.

Split from `core.service`. The chat front ends live in `bot/`, which core never imports, so the runner
reports each chat platform's connection here (`ChatLink`); the broker reports whether it would refuse
orders (`trading_blocked`, e.g. MT5 with Algo Trading off). Neither costs a broker call: /health must
answer while the broker hangs.
"""
from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field

from core.domain.models import RecoveryReport
from core.domain.timeframes import Timeframe
from core.ops.error_handler import error_rates

STALE_HEARTBEAT_CYCLES = 2  # /health calls the monitor stale once its heartbeat is this many cycles old


def _speed(clock) -> float:
    """Clock seconds per wall second: N on an accelerated paper replay clock, else 1."""
    return float(getattr(clock, "speed", 1.0) or 1.0)


class ChatLink(BaseModel):
    """One chat platform's connection, as the runner last reported it. `since` is wall time (a paper
    replay's clock runs N times faster; a network outage does not)."""

    state: Literal["connected", "retrying", "rejected"]
    since: float
    detail: str = ""

    def describe(self) -> str:
        at = time.strftime("%H:%M:%S UTC", time.gmtime(self.since))
        text = {"connected": f"connected since {at}", "retrying": f"not connected, retrying since {at}",
                "rejected": "token rejected"}[self.state]
        return f"{text} ({self.detail})" if self.detail else text


class SymbolData(BaseModel):
    """What one symbol's data covers (paper replay) and whether it can be analysed and traded at the market time."""

    first: float | None = None  # first and last bar of the analysis timeframe, market time
    last: float | None = None
    # the bars quotes and fills come from (the finest file), given when their span differs from the analysis bars'
    prices_first: float | None = None
    prices_last: float | None = None
    prices_timeframe: str | None = None
    at_clock: bool = True  # False: nothing to judge or no price to trade at the replay time
    no_prices: bool = False  # the analysis bars cover the replay time but the price bars do not

    def describe(self) -> str:
        if self.first is None or self.last is None:
            return "no data"
        span = f"data {_day(self.first)} to {_day(self.last)}"
        if self.prices_first is not None and self.prices_last is not None:
            span += f", prices from {self.prices_timeframe} bars {_day(self.prices_first)} to {_day(self.prices_last)}"
        return span if self.at_clock else f"{self.problem()} ({span})"

    def problem(self) -> str:
        """Why the symbol cannot be traded at the replay time, in a few words ("" when it can)."""
        if self.at_clock:
            return ""
        return "no prices at the replay time" if self.no_prices else "no data at the replay time"


def _day(t: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(t))


def symbol_data(service: Any) -> dict[str, SymbolData]:
    """Each configured symbol's data span on the analysis timeframe, and the span of the bars its quotes and
    fills come from where that differs, from a broker that knows them (the paper replay); empty for a live
    broker, whose data is the market itself."""
    span_of = getattr(service.broker, "data_span", None)
    if not callable(span_of):
        return {}
    prices_of = getattr(service.broker, "price_span", None)
    tf = service.cfg.range_detection.timeframe
    bar = Timeframe.parse(tf).seconds
    now = service.clock.now()
    out = {}
    for sym in service.cfg.symbols:
        try:
            span = span_of(sym, tf)
            prices = prices_of(sym) if callable(prices_of) and span is not None else None
        except Exception:  # noqa: BLE001 - an unreadable file reads as "no data", /health must answer
            span = prices = None
        if span is None:
            out[sym] = SymbolData(at_clock=False)
            continue
        first, last = span
        analysable = first <= now <= last + bar
        if prices is None or (prices[0] <= first and prices[1] >= last + bar):
            out[sym] = SymbolData(first=first, last=last, at_clock=analysable)
            continue
        priced = prices[0] <= now < prices[1]
        out[sym] = SymbolData(first=first, last=last, prices_first=prices[0], prices_last=prices[1],
                              prices_timeframe=prices[2].value, at_clock=analysable and priced,
                              no_prices=analysable and not priced)
    return out


class HealthReport(BaseModel):
    ok: bool
    broker: str
    broker_connected: bool
    monitor_running: bool
    monitor_heartbeat: float | None = None
    heartbeat_age_seconds: float | None = None
    last_cycle_ms: float | None = None
    monitor_cycles: int = 0
    open_trades: int = 0
    entries_blocked: str | None = None
    auto_disabled: bool = False
    errors_last_hour: int = 0
    critical_errors_last_hour: int = 0
    data_age_seconds: dict[str, float] = Field(default_factory=dict)
    config_version: str = ""
    recovery: RecoveryReport | None = None
    trading_blocked: str | None = None  # why the broker would refuse every order now, with the fix
    chats: dict[str, str] = Field(default_factory=dict)  # chat platform -> its connection, in words
    # order flow and news calendar: source, age_seconds, problem (see core.data.sources.market_context)
    data_sources: dict[str, dict] = Field(default_factory=dict)
    fallbacks_used: dict[str, int] = Field(default_factory=dict)  # "orderflow:skip_confirmation" -> analyses
    # the account model as read at connect/reconnect (MT5: netting / exchange (netting) / hedging; FIFO close)
    account_mode: str | None = None
    account_currency: str | None = None
    problems: list[str] = Field(default_factory=list)
    # the clocks, labelled: heartbeat ages are wall seconds (the monitor waits in wall time), data ages
    # are market seconds (how old the last quote is on the replay/market clock)
    heartbeat_wall_age_seconds: float | None = None
    heartbeat_limit_wall_seconds: float | None = None
    market_time: float | None = None
    clock_speed: float = 1.0
    replay: bool = False  # the market clock is a paper replay of old data, not the live market
    symbols: dict[str, SymbolData] = Field(default_factory=dict)


def account_model(broker: Any) -> tuple[str | None, str | None]:
    """(mode, currency) from what the broker last read (no broker call: /health answers while it hangs)."""
    info = getattr(broker, "account", None)
    if info is None or not hasattr(info, "mode_name"):
        return None, None
    return info.mode_name + (", FIFO close" if getattr(info, "fifo_close", False) else ""), info.currency or None


def trading_blocked(broker: Any) -> str | None:
    block = getattr(broker, "trading_blocked", None)
    return block if isinstance(block, str) and block else None


def health_report(service: Any) -> HealthReport:
    now = service.clock.now()
    m = service.monitor
    hb_age = now - m.heartbeat if m.heartbeat is not None else None
    hb_wall = hb_age / _speed(service.clock) if hb_age is not None else None
    hb_limit = STALE_HEARTBEAT_CYCLES * max(float(m.interval), 1.0)
    try:
        connected = bool(service.broker.is_connected()) and m.connected
    except Exception:  # noqa: BLE001
        connected = False
    crit, total = error_rates(service.store, now)
    ks = service.store.kill_switch.get()
    problems = []
    if not connected:
        problems.append("broker not connected")
    if not m.running:
        problems.append("monitor not running")
    # m.interval is wall time; the heartbeat's age is on the service clock (N x faster on a paper replay)
    elif hb_wall is not None and hb_wall > hb_limit:
        problems.append(f"monitor heartbeat is {hb_wall:.0f} s old (wall clock; a cycle is due every "
                        f"{m.interval:.0f} s)")
    blocked = trading_blocked(service.broker)
    if blocked:
        problems.append(f"orders will be refused: {blocked}")
    chats = {name: link.describe() for name, link in sorted(service.chat_links.items())}
    problems += [f"{name} {chats[name]}" for name, link in sorted(service.chat_links.items())
                 if link.state != "connected"]
    market = getattr(service, "market", None)  # duck-typed: ops must not import core.data
    sources = market.status() if market is not None else {}
    if market is not None:
        problems += market.problems()
    mode, currency = account_model(service.broker)
    return HealthReport(
        data_sources=sources, fallbacks_used=dict(market.fallbacks) if market is not None else {},
        account_mode=mode, account_currency=currency, ok=not problems, broker=getattr(service.broker, "name", type(service.broker).__name__),
        broker_connected=connected, monitor_running=m.running, monitor_heartbeat=m.heartbeat,
        heartbeat_age_seconds=hb_age, last_cycle_ms=m.last_report.duration_ms if m.last_report else None,
        monitor_cycles=m.cycles, open_trades=len(service.exits), entries_blocked=service.notifier.entries_blocked(),
        auto_disabled=ks.auto_disabled, errors_last_hour=total, critical_errors_last_hour=crit,
        data_age_seconds={s: round(now - q.time, 1) for s, q in m.quotes().items()},
        config_version=service.cfg.short_version, recovery=service.recovery, trading_blocked=blocked,
        chats=chats, problems=problems, heartbeat_wall_age_seconds=hb_wall, heartbeat_limit_wall_seconds=hb_limit,
        market_time=now, clock_speed=_speed(service.clock), replay=callable(getattr(service.broker, "data_span", None)),
        symbols=symbol_data(service),
    )
