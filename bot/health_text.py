"""The /health text: broker, clock, monitor, errors, chats, data age per symbol and source, in one phone-sized
block. Split from `bot.presenter` (the /scalp card and the replies to taps); it reads core's HealthReport
through `getattr` with defaults, so a field added in core never breaks it.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.formatting import _kv, _short, duration


def health_text(report: Any) -> str:
    g = lambda name, default=None: getattr(report, name, default)  # noqa: E731
    if not hasattr(report, "broker_connected"):
        return "Health\n" + _kv(report)
    problems = list(g("problems") or [])
    symbols = g("symbols") or {}
    # a symbol the replay has no bars for cannot be traded: never under a plain ✅ OK
    problems += [f"{sym}: {d.problem()}" for sym, d in symbols.items() if not d.at_clock]
    ok = g("ok") and not problems
    lines = ["Health: ✅ OK" if ok else "Health: ⚠️ " + "; ".join(problems or ["problems"])]
    lines += _clock_lines(report)
    lines.append(f"Broker {g('broker', '?')}: {'connected' if g('broker_connected') else 'NOT connected'}")
    if g("account_mode"):  # MT5: netting accounts take one position per symbol
        lines.append(f"Account: {g('account_mode')}" + (f", {g('account_currency')}" if g("account_currency") else ""))
    age = g("heartbeat_wall_age_seconds", g("heartbeat_age_seconds"))
    limit = g("heartbeat_limit_wall_seconds")
    last = g("last_cycle_ms")
    mon = "running" if g("monitor_running") else "STOPPED"
    if age is None:
        mon += ", no heartbeat yet"
    else:
        mon += f", heartbeat {age:.0f} s ago (wall clock" + (f"; late after {limit:.0f} s)" if limit else ")")
    mon += f", {g('monitor_cycles', 0)} cycles" + (f", last {last:.1f} ms" if last is not None else "")
    lines.append(f"Monitor: {mon}")
    blocked = g("entries_blocked")
    lines.append(f"Open trades: {g('open_trades', 0)} · entries: {'blocked: ' + blocked if blocked else 'allowed'}")
    lines.append(f"Errors last hour: {g('errors_last_hour', 0)} ({g('critical_errors_last_hour', 0)} critical)"
                 f" · auto-disable: {'ON' if g('auto_disabled') else 'off'}")
    chats = g("chats") or {}
    if chats:  # the runner's report of each chat platform (bot.chat_link)
        lines.append("Chats: " + " · ".join(f"{name} {state}" for name, state in chats.items()))
    ages = g("data_age_seconds") or {}
    if ages:
        lines.append("Last quote age (market time): "
                     + ", ".join(f"{k} {duration(v) if v >= 60 else f'{v:.0f}s'}" for k, v in ages.items()))
    for sym, d in symbols.items():
        lines.append(f"{sym}: {'✅' if d.at_clock else '❌'} {d.describe()}")
    for name, src in (g("data_sources") or {}).items():
        age = src.get("age_seconds")
        state = f"{duration(age) if age >= 60 else f'{age:.0f}s'} old" if age is not None else "no data yet"
        lines.append(f"{name}: {state}" + (f" ⚠ {_short(src['problem'], 120)}" if src.get("problem") else ""))
    fb = g("fallbacks_used") or {}
    if fb:
        lines.append("Fallbacks used: " + ", ".join(f"{k} ×{v}" for k, v in sorted(fb.items())))
    if g("config_version"):
        lines.append(f"config {g('config_version')}")
    return "\n".join(lines)


def _clock_lines(report: Any) -> list[str]:
    """The market clock, labelled: on a paper replay it is old data at N×, not the live market."""
    t = getattr(report, "market_time", None)
    if t is None:
        return []
    when = datetime.fromtimestamp(float(t), UTC).strftime("%Y-%m-%d %H:%M UTC")
    if getattr(report, "replay", False):
        speed = float(getattr(report, "clock_speed", 1.0) or 1.0)
        return [f"Replay clock: {when} (paper replay at {speed:g}×, not the live market)"]
    return [f"Market clock: {when}"]
