"""`/backtest SYMBOL [days]` in chat: the core backtest in a worker thread, progress edits, summary + PNG.

A backtest is seconds to minutes of CPU, so it runs in a worker (`asyncio.to_thread`): the event loop
keeps answering other commands and button taps, and the monitor keeps managing live trades. One backtest
at a time (a second request is told to wait rather than queued: two would halve the CPU of both and of
the monitor). The reply is the summary with the trade count next to every figure (a win rate over 4
trades means little, and the trader should see that at a glance) plus the equity + drawdown PNG.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from bot.command_spec import USAGE
from bot.formatting import money, plural
from bot.progress import MIN_INTERVAL_S, STEP_PCT, ProgressFn, ProgressRelay
from bot.replies import Reply
from core.api import MIN_TRADES, profit_factor_text, run_backtest
from core.domain.timeframes import Timeframe

log = logging.getLogger(__name__)

DEFAULT_DAYS = 30
MAX_DAYS = 3650
BUSY = "A backtest is already running; try again when it has finished."


def _num(x: float | None, spec: str = "+.2f", suffix: str = "") -> str:
    return "-" if x is None else f"{x:{spec}}{suffix}"


def _day(t: float) -> str:
    """With the year: a backtest replays old data, and '22 Oct' alone reads as this year."""
    return datetime.fromtimestamp(float(t), UTC).strftime("%d %b %Y %H:%M UTC")


def backtest_summary(report: Any, days: int | None, before: str = "") -> str:
    """Phone-sized summary; `(n=…)` is the number of trades each figure rests on. `before`: what the
    period ends at ("the replay clock", "now"), said with the period so nobody reads it as the file's end."""
    m = report.metrics
    o = m.overall
    n = f"(n={o.trades})"
    nr = f"(n={o.r_trades})"  # R figures rest on trades with a stop (an adopted orphan without one has no R)
    period = f"last {plural(days, 'day')}" if days else "the whole series"
    if days and before:
        period = f"{plural(days, 'day')} before {before}"
    wr = None if o.win_rate is None else 100 * o.win_rate
    # the money and % maxima can come from different falls (a % is of its own peak), hence two figures
    dd_pct = f" · {o.max_drawdown_pct:.1f}% of peak" if o.max_drawdown_pct is not None else ""
    cur = getattr(report, "currency", "") or ""  # on a cent account (USC) a bare 5.56 reads as dollars
    lines = [
        f"📊 Backtest {report.symbol} {report.timeframe}, {period} · strategy {report.strategy_mode}",
        f"{_day(report.start)} → {_day(report.end)} · {report.bars} bars · costs on",
        f"Net P&L {money(o.net_pnl, cur)} {n} · balance {money(report.starting_balance, '', '')} → "
        f"{money(report.final_balance, cur, '')}",
        f"Win rate {_num(wr, '.0f', '%')} {n} · profit factor {profit_factor_text(o)} {n}",
        f"Expectancy {_num(o.expectancy_r, '+.3f', ' R')} {nr} · {money(o.expectancy_money, cur)}/trade {n}",
        f"Avg R {_num(o.avg_r)} {nr} · median R {_num(o.median_r)} {nr}",
        f"MFE {_num(o.avg_mfe_r, '+.2f', ' R')} · MAE {_num(o.avg_mae_r, '+.2f', ' R')} (n={o.mfe_trades})",
        f"Max drawdown {money(o.max_drawdown, cur, '')}{dd_pct} {n}",
    ]
    if o.wins or o.losses:  # why money and R can disagree: at a fixed lot a wider stop risks more money per 1 R
        lines.append(f"Avg risk at the stop: winners {money(o.avg_risk_money_win, cur, '')} (n={o.wins}) · "
                     f"losers {money(o.avg_risk_money_loss, cur, '')} (n={o.losses})")
    ci = m.expectancy_r_ci
    if ci is not None and ci.low is not None:
        lines.append(f"Expectancy {int(ci.confidence * 100)}% CI {ci.low:+.3f} R … {ci.high:+.3f} R "
                     f"{_count(ci.trades)}")
    parts = [f"{label} {_num(b.expectancy_r, '+.3f', ' R')} {_count(b.trades)}"
             for label, b in (("in-sample", m.in_sample), ("out-of-sample", m.out_of_sample)) if b is not None]
    if parts:
        lines.append("Split: " + " · ".join(parts))
    if m.by_strategy:
        lines.append("By strategy:")
        for name, b in list(m.by_strategy.items())[:6]:
            lines.append(f" • {name}: exp {_num(b.expectancy_r, '+.2f', ' R')}, net {money(b.net_pnl, cur)} "
                         f"{_count(b.trades)}")
    if o.trades < MIN_TRADES:
        lines.append(f"⚠️ Fewer than {MIN_TRADES} trades: too few to judge the strategy by; test a longer period.")
    if report.open_at_end:
        lines.append(f"⚠️ {plural(report.open_at_end, 'trade')} still open at the end (market closed)")
    return "\n".join(lines)


def _count(trades: int) -> str:
    """A figure's trade count, flagged where it is too small to mean anything (the CLI table's MIN_TRADES)."""
    return f"(n={trades})" if trades >= MIN_TRADES else f"(n={trades}, too few trades)"


class BacktestCommand:
    """The `/backtest` handler of a `bot.commands.CommandRouter` (reads the router's current cfg and service;
    not imported here, since the router imports this module)."""

    def __init__(self, router: Any, *, min_interval: float = MIN_INTERVAL_S, step_pct: int = STEP_PCT):
        self.router = router
        self.min_interval = min_interval
        self.step_pct = step_pct
        self._lock = asyncio.Lock()
        self.runner: Any = None  # run_backtest's signature; None = core.backtest.api.run_backtest

    def _parse(self, args: list[str]) -> tuple[str, int] | None:
        if not 1 <= len(args) <= 2:
            return None
        days = DEFAULT_DAYS if len(args) == 1 else self.router._int(args[1], 1, MAX_DAYS)
        if days is None:
            return None
        # bad days are a usage line before any symbol look-up; an unknown symbol raises (with suggestions)
        return self.router._symbol(args[0]), days

    async def __call__(self, user_id: Any, args: list[str], progress: ProgressFn | None = None) -> Reply:
        parsed = self._parse(args)
        if parsed is None:
            return Reply(text=USAGE["backtest"], kind="usage")
        symbol, days = parsed
        self.router.service.authorize(user_id, "read")
        # the days before the service's clock: on a paper replay the file's last days lie in the replay's
        # future (testing them would show results the replay has not reached); live, the days before now
        clock = self.router.service.clock
        tf = Timeframe.parse(self.router.cfg.for_symbol(symbol).range_detection.timeframe).seconds
        end = float(clock.now()) - tf  # the last decision bar is one that has closed by then
        replay = callable(getattr(self.router.service.broker, "data_span", None))  # the paper broker
        before = "the replay clock" if replay else "now"
        runner = self.runner or run_backtest
        if self._lock.locked():
            return Reply(text=BUSY, kind="error")
        async with self._lock:
            relay = ProgressRelay(progress, f"Backtesting {symbol}, {plural(days, 'day')} before {before}",
                                  min_interval=self.min_interval, step_pct=self.step_pct)
            await relay.start()
            try:
                report = await asyncio.to_thread(runner, self.router.cfg, symbol, start=end + tf - days * 86400.0, end=end,
                                                 progress=relay)
                png = await asyncio.to_thread(_equity_png, report)
            except BaseException as e:
                if isinstance(e, asyncio.CancelledError):
                    relay.cancel()  # shutdown: the worker stops at its next progress report
                await relay.finish(f"❌ Backtest {symbol} stopped.")
                raise
            secs = getattr(report, "seconds", 0.0) or 0.0
            await relay.finish(f"✅ Backtest {symbol} done: {report.bars} bars in {secs:.1f} s.")
        text = backtest_summary(report, days, before)
        if png is None:
            text += "\n(equity chart unavailable)"
        return Reply(text=text, image=png, image_name=f"backtest_{symbol}_{days}d.png")


def _equity_png(report: Any) -> bytes | None:
    """Best effort: the figures are the answer; a chart failure is logged, not fatal."""
    try:
        from core.api import equity_png

        return equity_png(report)
    except Exception:
        log.exception("equity chart for the %s backtest failed", getattr(report, "symbol", "?"))
        return None
