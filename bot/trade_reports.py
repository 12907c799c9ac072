"""The /status, /trades and /metrics texts: open trades with their P&L, the last closed trades, and a
phone-sized metrics summary. Split from `bot.presenter` (the /scalp card and the replies to taps); rows
are read through `getattr` with defaults, so a field added in core never breaks a report.
"""
from __future__ import annotations

import time
from typing import Any

from bot.formatting import _arrow, _kv, duration, money, plural, price
from core.api import exit_reason_words, r_text
from core.domain.models import ClosedTrade, Direction


def status_text(rows: list[Any], digits_of=lambda sym: 2, now: float | None = None, currency: str = "") -> str:
    if not rows:
        return "No open range scalps. /scalp SYMBOL looks for one."
    now = now if now is not None else time.time()
    lines = [f"Open range scalps ({len(rows)}):"]
    for r in rows:
        trade = getattr(r, "trade", r)
        sym = getattr(trade, "symbol", "?")
        d = digits_of(sym)
        direction = getattr(trade, "direction", None)
        dtxt = _arrow(direction) if isinstance(direction, Direction) else str(direction or "")
        pnl_r = getattr(r, "pnl_r", None)
        if pnl_r is None:
            pnl_r = getattr(r, "r_multiple", None)
        entry_t = getattr(trade, "entry_time", None)
        in_trade = getattr(r, "minutes_in_trade", None)
        secs = in_trade * 60 if in_trade is not None else (now - entry_t if entry_t else None)
        be = getattr(r, "breakeven_moved", getattr(trade, "breakeven_moved", False))
        lines.append(
            f"#{getattr(trade, 'ticket', '?')} {sym} {dtxt} {getattr(trade, 'strategy', '')}".rstrip()
        )
        lines.append(
            f"   entry {price(getattr(trade, 'entry_price', None), d)} SL {price(getattr(trade, 'sl', None), d)}"
            f" TP {price(getattr(trade, 'tp', None), d)}"
        )
        pnl_txt = "- (waiting for a price)" if pnl_r is None else r_text(pnl_r)  # as the alerts write R
        pnl_money = getattr(r, "pnl", None)
        if pnl_r is not None and isinstance(pnl_money, int | float):
            pnl_txt += f" ({money(pnl_money, currency)})"
        lines.append(f"   P&L {pnl_txt} · {duration(secs)} · breakeven {'yes' if be else 'no'}")
    return "\n".join(lines)


def trades_text(trades: list[ClosedTrade], digits_of=lambda sym: 2, currency: str = "") -> str:
    if not trades:
        return "No closed trades yet."
    lines = ["Last closed trade:" if len(trades) == 1 else f"Last {len(trades)} closed trades:"]
    for t in trades:
        d = digits_of(t.symbol)
        icon = "🟢" if t.r_multiple > 0 else ("⚪" if t.r_multiple == 0 else "🔴")
        lines.append(f"{icon} #{t.ticket} {t.symbol} {t.direction.value} {t.strategy}")
        lines.append(
            f"   {price(t.entry_price, d)}→{price(t.exit_price, d)} {r_text(t.r_multiple)}"
            f" P&L {money(t.pnl - abs(t.commission), currency)} · {exit_reason_words(t.exit_reason)}"
        )
    return "\n".join(lines)


def metrics_text(report: Any, days: int | None, currency: str = "") -> str:
    """A phone-sized summary; the full table (`core.store.metrics.format_report`) is for the CLI."""
    head = f"Metrics, last {plural(days, 'day')}" if days else "Metrics, all time"
    m = getattr(report, "overall", None)
    if m is None:
        return f"{head}\n{_kv(report)}"
    if not m.trades:
        return f"{head}: no closed trades yet."

    def pct(x):
        return "-" if x is None else f"{100 * x:.0f}%"

    def r(x, spec="+.2f"):
        return "-" if x is None else format(x, spec) + " R"

    rr = (m.avg_win_r / abs(m.avg_loss_r)) if m.avg_win_r and m.avg_loss_r else None
    lines = [
        f"{head}: {plural(m.trades, 'trade')}",
        f"P&L {money(m.net_pnl, currency)} · win rate {pct(m.win_rate)} · avg win/loss {rr:.2f}" if rr else
        f"P&L {money(m.net_pnl, currency)} · win rate {pct(m.win_rate)}",
        f"expectancy {r(m.expectancy_r)}" + (f" (R over {m.r_trades})" if m.r_trades != m.trades else "")
        + (f" ({money(m.expectancy_money, currency)}/trade)" if m.expectancy_money is not None else ""),
        f"MFE avg {r(m.avg_mfe_r)} · MAE avg {r(m.avg_mae_r)}",
        f"max drawdown {money(m.max_drawdown, currency, sign='')}"
        + (f" · {m.max_drawdown_pct:.1f}% of peak" if m.max_drawdown_pct is not None else ""),
    ]
    by = getattr(report, "by_strategy", {}) or {}
    if by:
        lines.append("By strategy:")
        for name, b in list(by.items())[:6]:
            lines.append(f" • {name}: {plural(b.trades, 'trade')}, win {pct(b.win_rate)}, exp {r(b.expectancy_r)}")
    return "\n".join(lines)
