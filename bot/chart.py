"""PNG charts for the chat cards: what the trader needs to judge a range scalp at a glance.

Rendered with matplotlib's object API on an Agg canvas (no pyplot, no global state), so charts can be
drawn from worker threads and never need a display. Speed matters because the chart is on the
`/scalp` critical path: candles are two vectorised collections, the layout is fixed (no layout
engine) and PNG compression is kept light. Sizes and the shared pieces are in `bot.chart_axes`.
"""
from __future__ import annotations

import logging
import textwrap

import numpy as np

from bot.chart_axes import (
    BUY,
    ENTRY,
    FS_NOTE,
    LAST,
    SELL,
    SL,
    TP,
    VWAP,
    draw_candles,
    draw_range,
    finish,
    fit_range_levels,
    fmt_price,
    new_axes,
    price_tags,
    time_axis,
)
from core.api import session_vwap
from core.domain.models import ActiveTrade, Alert, AnalysisResult, Direction, StrategyScore

log = logging.getLogger(__name__)

MAX_BARS = 120
RIGHT_PAD = 6  # bars of room after the last candle, where the trade levels run into the price tags
LEVEL_BARS = 12  # a proposal's entry/SL/TP are drawn over the last hour of M5 bars
NO_TRADE_GREY = "#546e7a"


def _vwap(candles: np.ndarray) -> np.ndarray:
    """The same session VWAP the analysis uses, so the line on the chart is the one that was scored."""
    vwap, _sigma = session_vwap(
        candles["time"], candles["high"], candles["low"], candles["close"], candles["tick_volume"]
    )
    return vwap


def _vwap_line(x: np.ndarray, bars: np.ndarray, vw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """VWAP with a gap at each session reset: joined across the reset, the old session's value and the
    new one make a vertical stroke that looks like a price move."""
    session = np.floor(bars["time"] / 86400.0)
    breaks = np.flatnonzero(session[1:] != session[:-1]) + 1
    return np.insert(x, breaks, np.nan), np.insert(np.asarray(vw, dtype=float), breaks, np.nan)


def _side(direction: Direction) -> tuple[str, str]:
    """Arrow and colour of a side: buy is green and points up, sell is red and points down, on every chart."""
    return ("▲", BUY) if direction is Direction.LONG else ("▼", SELL)


def _last_price(ax, bars: np.ndarray, digits: int, right: float) -> tuple:
    last = float(bars["close"][-1])
    ax.hlines(last, len(bars) - 1, right, colors=LAST, lw=0.9, ls=":", zorder=4)
    return (last, f"last {fmt_price(last, digits)}", LAST, True)


def _trade_levels(ax, entry: float, sl: float, tp: float, x0: float, x1: float, digits: int) -> list[tuple]:
    """Entry/SL/TP lines over a shaded reward (green) and risk (red) box, as a trading terminal draws them."""
    ax.fill_between([x0, x1], entry, tp, color=TP, alpha=0.16, lw=0, zorder=1.8)
    ax.fill_between([x0, x1], entry, sl, color=SL, alpha=0.16, lw=0, zorder=1.8)
    tags = []
    for y, label, color in ((entry, "entry", ENTRY), (sl, "SL", SL), (tp, "TP", TP)):
        ax.hlines(y, x0, x1, colors=color, lw=1.5, ls="--", zorder=4)
        tags.append((y, f"{label} {fmt_price(y, digits)}", color, True))
    return tags


MERGE_TICKS = 2  # entry and last (or exit) tags this close say one price: one tag, not two on top of each other


def _merge_near(ax, tags: list[tuple], digits: int, x: float) -> list[tuple]:
    """The entry tag and the last-price (or exit) tag within MERGE_TICKS ticks say one price: one gutter tag
    (the entry's), and the other's word written on the entry line at `x`, not a second tag on top of it."""
    tick = 10.0 ** -digits
    entry = next((t for t in tags if t[1].startswith("entry ")), None)
    other = next((t for t in tags if t[1].startswith(("last ", "exit "))), None)
    if entry is None or other is None or abs(entry[0] - other[0]) > MERGE_TICKS * tick + tick / 10:
        return tags
    word = other[1].split(" ", 1)[0]
    ax.text(x, entry[0], f"{word} = entry ", fontsize=FS_NOTE, color=other[2], ha="right", va="bottom",
            weight="bold", zorder=7, bbox=dict(facecolor="white", alpha=0.85, edgecolor="none", pad=0.6))
    return [t for t in tags if t is not other]


def analysis_figure(
    candles: np.ndarray,
    analysis: AnalysisResult,
    digits: int = 2,
    strategy: StrategyScore | None = None,
):
    """The figure behind `render_analysis_chart` (tests read its axes)."""
    bars = candles[-MAX_BARS:]
    # trade levels only on a tradeable card: entry/SL/TP lines on a NO TRADE chart invite a bad trade
    strat = strategy or (analysis.top if analysis.passed else None)
    tradeable = analysis.passed and strat is not None
    title = f"{analysis.symbol} {analysis.timeframe}"
    if strat is not None:
        arrow, _ = _side(strat.direction)
        title += f" · {strat.strategy} {strat.direction.value.upper()} {arrow} R:R {strat.rr:.2f}"
    fig, ax = new_axes(title, "TRADEABLE" if tradeable else "NO TRADE", TP if tradeable else NO_TRADE_GREY)
    n = len(bars)
    right = n + RIGHT_PAD
    tags: list[tuple] = []
    levels: list[float] = []
    if n:
        x = draw_candles(ax, bars)
        vw = _vwap(candles)[-n:]
        ax.plot(*_vwap_line(x, bars, vw), color=VWAP, lw=1.3, label="VWAP", zorder=3.5)
        tags.append((float(vw[-1]), f"VWAP {fmt_price(vw[-1], digits)}", VWAP, False))
        tags.append(_last_price(ax, bars, digits, right))
    range_levels: list[float] = []
    if analysis.range is not None:
        range_levels = [analysis.range.range_high, analysis.range.range_low]
    if strat is not None:
        x0 = max(n - LEVEL_BARS, 0)
        tags += _trade_levels(ax, strat.entry, strat.stop_loss, strat.take_profit, x0, right, digits)
        arrow, color = _side(strat.direction)
        ax.text(x0, strat.entry, arrow, fontsize=13, color=color, ha="center", va="center", zorder=5)
        levels += [strat.entry, strat.stop_loss, strat.take_profit]
        tags = _merge_near(ax, tags, digits, right)
    limits = fit_range_levels(bars, levels, range_levels)
    if limits is not None:
        ax.set_ylim(*limits)
    if analysis.range is not None:
        draw_range(ax, analysis.range, digits)
    time_axis(ax, bars, RIGHT_PAD)
    price_tags(ax, tags)
    if analysis.range is None and analysis.no_range is not None:
        note = textwrap.shorten(analysis.no_range.message, 70, placeholder="…")  # whole words only
        ax.text(0.02, 0.96, note, transform=ax.transAxes, fontsize=FS_NOTE, va="top",
                wrap=True, bbox=dict(facecolor="white", alpha=0.85, edgecolor="none"), zorder=8)
    if n == 0:
        ax.text(0.5, 0.5, "no candles", transform=ax.transAxes, ha="center", fontsize=FS_NOTE)
    return fig


def render_analysis_chart(
    candles: np.ndarray,
    analysis: AnalysisResult,
    digits: int = 2,
    strategy: StrategyScore | None = None,
) -> bytes:
    """Recent candles, the range (high/mid/low), both critical zones, VWAP, the last price and the top
    trade's levels."""
    return finish(analysis_figure(candles, analysis, digits, strategy))


def render_alert_chart(candles: np.ndarray, alert: Alert, digits: int = 2) -> bytes:
    """Exit / invalidation alert: where price went relative to the range and the trade's levels."""
    return finish(alert_figure(candles, alert, digits))


def _alert_title(alert: Alert) -> str:
    title = alert.title if not alert.symbol or alert.symbol in alert.title else f"{alert.symbol} · {alert.title}"
    if alert.ticket is not None and str(alert.ticket) not in title:
        title += f" · #{alert.ticket}"
    if alert.trade is not None:
        arrow, _ = _side(alert.trade.direction)
        side = alert.trade.direction.value.upper()
        # the title ("XAUUSDc LONG #100001 closed") usually names the side already: add only its arrow then
        if side in title.split():
            title = title.replace(f" {side} ", f" {side} {arrow} ", 1) if f" {side} " in title else title
        else:
            title += f" · {side} {arrow}"
    if len(title) <= 60:
        return title
    cut = title[:59].rsplit(" ", 1)[0]  # never half a word
    return cut + "…"


def _result_badge(trade: ActiveTrade | None, exit_price: float | None) -> tuple[str, str]:
    """The exit's result in R, green for a profit and red for a loss (empty without a trade or exit)."""
    if trade is None or exit_price is None or trade.initial_risk <= 0:
        return "", LAST
    r = trade.r_multiple(exit_price)
    return f"{r:+.2f} R", TP if r > 0 else SL if r < 0 else LAST


def alert_figure(candles: np.ndarray, alert: Alert, digits: int = 2):
    """The figure behind `render_alert_chart` (tests read its axes)."""
    bars = candles[-MAX_BARS:]
    trade = alert.trade
    badge, badge_color = _result_badge(trade, alert.exit_price)
    fig, ax = new_axes(_alert_title(alert), badge, badge_color)
    n = len(bars)
    right = n + RIGHT_PAD
    if n:
        draw_candles(ax, bars)
    levels: list[float] = []
    range_levels = ([alert.range_data.range_high, alert.range_data.range_low]
                    if alert.range_data is not None else [])
    tags: list[tuple] = []
    if trade is not None:
        entry_i = float(np.searchsorted(bars["time"], trade.entry_time)) if n else 0.0
        x0 = entry_i if entry_i < n else max(n - LEVEL_BARS, 0)
        tags += _trade_levels(ax, trade.entry_price, trade.sl, trade.tp, x0, right, digits)
        levels += [trade.entry_price, trade.sl, trade.tp]
        if trade.initial_sl != trade.sl:  # the stop was moved (breakeven): show where it was, faintly
            ax.hlines(trade.initial_sl, x0, right, colors=SL, lw=1.0, ls=":", alpha=0.6, zorder=4)
            tags.append((trade.initial_sl, f"SL was {fmt_price(trade.initial_sl, digits)}", SL, False))
            levels.append(trade.initial_sl)
        arrow, color = _side(trade.direction)
        ax.text(x0, trade.entry_price, arrow, fontsize=13, color=color, ha="center", va="center", zorder=5)
    if alert.exit_price is not None:
        ax.scatter([n - 1 if n else 0], [alert.exit_price], marker="X", s=70, color=badge_color, zorder=6,
                   edgecolors="white", linewidths=0.8)
        tags.append((alert.exit_price, f"exit {fmt_price(alert.exit_price, digits)}", badge_color, True))
        levels.append(alert.exit_price)
    elif n:
        tags.append(_last_price(ax, bars, digits, right))
    tags = _merge_near(ax, tags, digits, right)
    limits = fit_range_levels(bars, levels, range_levels)
    if limits is not None:
        ax.set_ylim(*limits)
    if alert.range_data is not None:
        draw_range(ax, alert.range_data, digits)
    time_axis(ax, bars, RIGHT_PAD)
    # entry, SL, TP and exit of a scalp sit within a few points of each other: the tags are packed apart
    price_tags(ax, tags)
    if n == 0:
        ax.text(0.5, 0.5, "no candles", transform=ax.transAxes, ha="center", fontsize=FS_NOTE)
    return fig
