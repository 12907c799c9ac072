"""Plain-text cards for chat: short enough to read on a phone, identical on every platform.

No Markdown/HTML: a symbol or reason with an underscore would break Telegram's parser, and plain text
renders the same in Telegram, Discord and a terminal. Lines stay under ~45 characters where possible
so a phone does not wrap them. Service-side report types (outcomes, status rows, health) are read
through `getattr` with defaults, so a field added in core never breaks a card.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from bot.alert_style import SEVERITY_ICON, alert_icon  # noqa: F401 - SEVERITY_ICON re-exported
from core.api import exit_reason_words, r_text
from core.domain.models import Alert, AnalysisResult, ClosedTrade, Direction, StrategyScore, TradeProposal
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


def strategy_lines(i: int, s: StrategyScore, digits: int) -> list[str]:
    mark = "" if s.viable else " (not viable)"
    lines = [
        f"{i}. {s.strategy} {_arrow(s.direction)} · score {s.score:.0f}{mark}",
        f"   entry {price(s.entry, digits)}  SL {price(s.stop_loss, digits)}",
        f"   TP {price(s.take_profit, digits)}  R:R {s.rr:.2f}",
    ]
    if not s.viable and s.reason:
        # the reason reads "<what the setup is>. Not tradeable: <why>"; on a phone the why is what matters
        cut = s.reason.find("Not tradeable:")
        lines.append("   " + _short(s.reason[cut:] if cut > 0 else s.reason, 160))
    return lines


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


def analysis_card(a: AnalysisResult, digits: int = 2, proposals: Iterable[TradeProposal] = (),
                  blocked: str | None = None, offer_seconds: float | None = None) -> str:
    """Verdict first (the one thing a trader needs), then range, reasons, strategies. `blocked` (core's
    reason new entries are refused: a pause, an emergency stop) is said next to the Approve offer, so a
    trader knows before tapping that the tap will be refused until /resume."""
    top = a.top
    tradeable = a.passed and top is not None
    verdict = f"✅ TRADEABLE · confidence {a.confidence:.0f}/100" if tradeable else "❌ NO TRADE"
    head = f"{a.symbol} {a.timeframe} · {hhmm(a.as_of)}"
    if a.session:
        head += f" · {a.session}"
    lines = [head, verdict]
    r = a.range
    if r is not None:
        z = r.critical_gaps
        lines += [
            f"Range {price(r.range_low, digits)} – {price(r.range_high, digits)} ({r.range_type})",
            f"mid {price(r.range_mid, digits)} · width {r.range_width_pct:.2f}% · {r.range_width_atr:.1f} ATR",
            f"Sell zone {price(z.upper_zone_start, digits)}–{price(z.upper_zone_end, digits)}",
            f"Buy zone {price(z.lower_zone_start, digits)}–{price(z.lower_zone_end, digits)}",
        ]
        if r.invalidation_signals:
            lines += [f" ⚠ {_short(x)}" for x in r.invalidation_signals[:2]]
    elif a.no_range is not None and a.no_range.reason == "no_data_at_replay_time":
        # the one thing to say: every check below would only repeat "no candles" in its own words
        lines.append(a.no_range.message)
        if a.config_version:
            lines.append(f"config {a.config_version[:12]}")
        return "\n".join(lines)
    elif a.no_range is not None:
        lines.append(f"No range: {a.no_range.message}")
    failures = a.failures
    if failures:
        said = a.no_range.message if a.range is None and a.no_range is not None else None
        lines.append("Blocked by:")
        # the range check repeats the "No range" sentence word for word: say it once
        lines += [f" • {_short(f.name + ': ' + f.reason, 160)}" if f.reason != said else f" • {f.name} (see above)"
                  for f in failures]
    elif a.filters:
        lines.append(f"Filters: all {len(a.filters)} passed")
    soft = [f for f in a.filters if not f.passed and not f.blocking]
    for note in [f.name + ": " + f.reason for f in soft[:3]] + list(a.warnings[:3]):
        lines += _wrapped(" ⚠ ", note)
    if a.strategies:
        lines.append("Strategies:")
        for i, s in enumerate(a.strategies[:5], 1):
            lines += strategy_lines(i, s, digits)
    props = list(proposals)
    if props:
        exp = min(p.expires_at for p in props)
        if blocked:
            lines.append(f"⏸ {blocked}")
        if offer_seconds:  # the window /config states, in the trader's (wall) time: a replay's clock runs N×
            lines.append(f"Tap Approve within {_wall(offer_seconds)} (wall clock) to trade {props[0].lot:g} lot.")
        else:
            lines.append(f"Tap Approve to trade {props[0].lot:g} lot (offer ends {hhmm(exp)} market time).")
    if a.config_version:
        lines.append(f"config {a.config_version[:12]}")
    return "\n".join(lines)


def button_label(kind: str, index: int, s: StrategyScore) -> str:
    if kind == "approve":
        return f"✅ Approve {index} {s.strategy} {s.direction.value}"[:64]
    return f"✖ Reject {index}"


def outcome_text(outcome: Any, digits: int = 2) -> str:
    """One line saying what happened to a proposal or a close: executed/expired/rejected/slippage."""
    if outcome is None:
        return "Done."
    if isinstance(outcome, str):
        return outcome
    msg = getattr(outcome, "message", "") or ""
    state = getattr(outcome, "state", None) or getattr(outcome, "status", None)
    state = getattr(state, "value", state)
    ticket = getattr(outcome, "ticket", None)
    fill = getattr(outcome, "fill_price", None) or getattr(outcome, "price", None)
    proposal = getattr(outcome, "proposal", None)
    if ticket is None and proposal is not None:
        ticket = getattr(proposal, "ticket", None)
        fill = fill or getattr(proposal, "fill_price", None)
    duplicate = bool(getattr(outcome, "duplicate", False))
    if state in ("executed", "closed") and ticket is not None:
        what = "Executed" if state == "executed" else "Closed"
        if duplicate:  # a double tap: say so, so nobody thinks a second trade was placed
            return f"ℹ️ Already handled: {what.lower()} at {price(fill, digits)} · ticket {ticket}"
        base = f"✅ {what} at {price(fill, digits)} · ticket {ticket}"
        more = getattr(outcome, "detail", "") or msg
        return f"{base}\n{more}" if more and more not in base else base
    ok = getattr(outcome, "ok", None)
    icon = {"rejected": "✖", "expired": "⌛", "failed": "⚠️"}.get(str(state))
    if icon is None:
        icon = "ℹ️" if duplicate or ok is None else ("✅" if ok else "⚠️")
    text = msg or (f"Proposal {state}." if state else "Done.")
    return f"{icon} {text}"


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


def config_text(cfg: Mapping[str, Any], version: str, symbol: str | None) -> str:
    """Only what a trader tunes, in words and units, one idea per line (the JSON would fill a phone
    screen with braces). Anything missing from `cfg` is simply left out."""
    def sec(name: str) -> Mapping[str, Any]:
        v = cfg.get(name)
        return v if isinstance(v, Mapping) else {}

    def n(x: Any) -> str:
        return f"{x:g}" if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x)

    lines = [f"⚙️ Config {'for ' + symbol if symbol else '(defaults)'} · version {version[:12]}"]
    ef = sec("entry_filters")
    if ef:
        lines.append(f"Entry: price within {n(ef.get('price_edge_threshold_atr'))} ATR of an edge · confluence ≥ "
                     f"{n(ef.get('min_confluence_score'))}/100 · strategy score ≥ {n(ef.get('min_strategy_score'))} · "
                     f"RSI {n(ef.get('rsi_oversold'))}/{n(ef.get('rsi_overbought'))}")
    rr = sec("strategy_rr")
    if rr:
        lines.append("R:R min / target / max:")
        r1 = lambda x: f"{x:.1f}" if isinstance(x, (int, float)) else str(x)  # noqa: E731
        lines += [f" • {k} {r1(v.get('min'))} / {r1(v.get('target'))} / {r1(v.get('max'))}"
                  for k, v in rr.items() if isinstance(v, Mapping)]
    rw = sec("range_width")
    if rw:
        lines.append(f"Range width: {n(rw.get('min_pct'))}–{n(rw.get('max_pct'))} % of price")
    ex = sec("execution")
    if ex:
        auto = ex.get("approval_mode") == "auto" or ex.get("auto_execute_enabled")
        mode = (f"AUTO above {n(ex.get('auto_execute_confidence_threshold'))}% confidence" if auto
                else "you approve each trade")
        lines.append(f"Orders: {n(ex.get('lot_size'))} lot · {mode} · proposals expire after "
                     f"{n(ex.get('proposal_expiry_seconds'))} s · deviation {n(ex.get('deviation_points'))} points · "
                     f"max entry slippage {n(ex.get('max_entry_slippage_pct'))} %")
    xs = sec("exits")
    if xs:
        lines.append(f"Exits: breakeven at +{n(xs.get('breakeven_trigger_r'))} R · close after "
                     f"{n(xs.get('max_minutes_in_trade'))} min · stalled after {n(xs.get('stall_minutes'))} min · "
                     f"re-entry after {n(xs.get('reentry_cooldown_minutes'))} min, at most "
                     f"{n(xs.get('max_reentries_per_range'))} per range")
    ss = sec("sessions")
    if ss:
        allowed = ", ".join(map(str, ss.get("allowed") or [])) or "none"
        lines.append(f"Sessions: {allowed} · outside them: {'allowed' if ss.get('allow_outside_sessions') else 'no'}")
    return "\n".join(lines)


def health_text(report: Any) -> str:
    g = lambda name, default=None: getattr(report, name, default)  # noqa: E731
    if not hasattr(report, "broker_connected"):
        return "Health\n" + _kv(report)
    problems = list(g("problems") or [])
    symbols = g("symbols") or {}
    # a symbol the replay has no bars for cannot be traded: never under a plain ✅ OK
    problems += [f"{sym}: no data at the replay time" for sym, d in symbols.items() if not d.at_clock]
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


def alert_text(alert: Alert) -> str:
    icon = alert_icon(alert)
    head = f"{icon} {alert.title}"
    if alert.symbol and alert.symbol not in alert.title:
        head += f" · {alert.symbol}"
    if alert.ticket is not None and str(alert.ticket) not in head:
        head += f" · #{alert.ticket}"
    return f"{head}\n{alert.text}".strip()


HELP = """MoneyBot commands
/scalp SYMBOL – analyse a range scalp (card + chart)
/status – open range scalps
/trades [n] – last n closed trades
/close TICKET – close a trade (asks first)
/pause, /resume – stop/allow new trades
/emergency – close everything and pause (asks first)
/metrics [days] – P&L, win rate, expectancy
/config [SYMBOL] – effective config
/health – broker, data, monitor, errors
/backtest SYMBOL [days] – replay the strategy
/help – this list"""
