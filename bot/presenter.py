"""Plain-text cards for chat: short enough to read on a phone, identical on every platform.

No Markdown/HTML: a symbol or reason with an underscore would break Telegram's parser, and plain text
renders the same in Telegram, Discord and a terminal. Lines stay under ~45 characters where possible
so a phone does not wrap them. Service-side report types (outcomes, status rows, health) are read
through `getattr` with defaults, so a field added in core never breaks a card.

This module holds the /scalp card, the replies to taps, /config, alerts and /help; the /health text is
`bot.health_text`, /status, /trades and /metrics are `bot.trade_reports`, shared formatters `bot.formatting`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bot.alert_style import SEVERITY_ICON, alert_icon  # noqa: F401 - SEVERITY_ICON re-exported
from bot.formatting import _arrow, _mins, _short, _wall, _wrapped, hhmm, price
from core.domain.models import Alert, AnalysisResult, StrategyScore, TradeProposal


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


def data_sources_line(a: AnalysisResult) -> str | None:
    """Which order flow the verdict used (and its age), and the news calendar's age, or that it was not checked."""
    dq = next((f for f in a.filters if f.name == "data_quality"), None)
    if dq is None:
        return None
    parts = []
    of = dq.details.get("orderflow") or {}
    if of.get("available"):
        conf = next((f for f in a.filters if f.name == "confluence"), None)
        flow = (conf.details.get("orderflow") or {}) if conf is not None else {}
        said = "" if not flow else " (confirms the fade)" if flow.get("confirms") else " (against the fade)"
        parts.append(f"order flow {of.get('source') or '?'} {_mins(of.get('age_minutes'))} old{said}")
    elif of.get("source") or (of.get("problem") and "no order-flow feed" not in of["problem"]):
        parts.append("order flow not used")
    elif of:
        parts.append("no order-flow feed")
    news = dq.details.get("news_calendar") or {}
    if news.get("available") and news.get("age_minutes") is not None:
        parts.append(f"news calendar {_mins(news.get('age_minutes'))} old")
    elif news and not news.get("available"):
        parts.append("news NOT checked")
    return ("Data: " + " · ".join(parts)) if parts else None


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
    data = data_sources_line(a)
    if data:
        lines.append(data)
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
