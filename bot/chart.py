"""PNG charts for the chat cards: what the trader needs to judge a range scalp at a glance.

Rendered with matplotlib's object API on an Agg canvas (no pyplot, no global state), so charts can be
drawn from worker threads and never need a display. Speed matters because the chart is on the
`/scalp` critical path: candles are drawn as two vectorised collections (wicks + bodies) instead of
one patch per bar, the figure is small, and PNG compression is kept light.
"""
from __future__ import annotations

import io
import logging
from datetime import UTC, datetime

import matplotlib

matplotlib.use("Agg")  # headless; must happen before anything imports pyplot

import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from core.indicators import session_vwap  # noqa: E402
from core.models import Alert, AnalysisResult, Direction, RangeStructure, StrategyScore  # noqa: E402

log = logging.getLogger(__name__)

WIDTH_IN, HEIGHT_IN, DPI = 7.2, 3.8, 100
UP, DOWN = "#26a69a", "#ef5350"
ZONE_SELL, ZONE_BUY = "#ef5350", "#26a69a"
MAX_BARS = 120
_BOX = dict(facecolor="white", alpha=0.7, edgecolor="none", pad=0.5)


def _vwap(candles: np.ndarray) -> np.ndarray:
    """The same session VWAP the analysis uses, so the line on the chart is the one that was scored."""
    vwap, _sigma = session_vwap(
        candles["time"], candles["high"], candles["low"], candles["close"], candles["tick_volume"]
    )
    return vwap


def _fmt(price: float, digits: int) -> str:
    return f"{price:.{digits}f}"


def _draw_candles(ax, candles: np.ndarray) -> np.ndarray:
    x = np.arange(len(candles), dtype=float)
    o, h, lo, c = candles["open"], candles["high"], candles["low"], candles["close"]
    colors = np.where(c >= o, UP, DOWN)
    ax.vlines(x, lo, h, colors=colors, linewidths=0.8, zorder=2)
    # bodies as thick line segments: one collection, far cheaper than one Rectangle patch per bar
    body_lo = np.minimum(o, c)
    body_hi = np.maximum(np.maximum(o, c), body_lo + (h.max() - lo.min()) * 0.002)
    width_pt = max(1.0, 0.7 * WIDTH_IN * 72 * 0.8 / max(len(candles) * 1.2, 1))
    ax.vlines(x, body_lo, body_hi, colors=colors, linewidths=width_pt, zorder=3)
    return x


def _time_axis(ax, candles: np.ndarray) -> None:
    n = len(candles)
    if n == 0:
        return
    ticks = np.linspace(0, n - 1, num=min(6, n)).astype(int)
    span_days = (int(candles["time"][-1]) - int(candles["time"][0])) / 86400
    fmt = "%d %b %H:%M" if span_days >= 1 else "%H:%M"
    labels = [datetime.fromtimestamp(int(candles["time"][i]), UTC).strftime(fmt) for i in ticks]
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels, fontsize=7)
    last = datetime.fromtimestamp(int(candles["time"][-1]), UTC)
    ax.set_xlabel(f"time (UTC) · last bar {last:%Y-%m-%d %H:%M}", fontsize=7)
    ax.set_xlim(-1, n + max(10, int(n * 0.24)))  # room on the right for the trade-level labels


def _draw_range(ax, rng: RangeStructure, digits: int) -> None:
    """Range lines labelled on the left, so they never collide with the trade levels on the right."""
    z = rng.critical_gaps
    ax.axhspan(z.upper_zone_start, z.upper_zone_end, color=ZONE_SELL, alpha=0.12, lw=0, zorder=1)
    ax.axhspan(z.lower_zone_start, z.lower_zone_end, color=ZONE_BUY, alpha=0.12, lw=0, zorder=1)
    label_style = dict(fontsize=7, color="#37474f", transform=ax.get_yaxis_transform(), zorder=6, bbox=_BOX)
    ax.text(0.005, z.upper_zone_start, "sell zone", va="bottom", color=ZONE_SELL, fontsize=7,
            transform=ax.get_yaxis_transform(), zorder=6, bbox=_BOX)
    ax.text(0.005, z.lower_zone_end, "buy zone", va="top", color="#00897b", fontsize=7,
            transform=ax.get_yaxis_transform(), zorder=6, bbox=_BOX)
    for y, label, style, va in (
        (rng.range_high, "range high", "-", "bottom"),
        (rng.range_mid, "mid", ":", "bottom"),
        (rng.range_low, "range low", "-", "top"),
    ):
        ax.axhline(y, color="#455a64", lw=1.0, ls=style, zorder=1.5)
        ax.text(0.13, y, f"{label} {_fmt(y, digits)}", va=va, **label_style)


def _draw_levels(ax, strat: StrategyScore, digits: int, x0: float, x1: float) -> list[tuple]:
    """Dashed entry/SL/TP lines; returns their right-hand labels for `_place_right_labels`."""
    levels = (
        (strat.entry, "entry", "#1565c0"),
        (strat.stop_loss, "SL", "#c62828"),
        (strat.take_profit, "TP", "#2e7d32"),
    )
    labels = []
    for y, label, color in levels:
        ax.hlines(y, x0, x1, colors=color, lw=1.4, ls="--", zorder=4)
        labels.append((y, f" {label} {_fmt(y, digits)}", color, True))
    arrow = "▲" if strat.direction is Direction.LONG else "▼"
    ax.annotate(arrow, (x0, strat.entry), fontsize=11, color="#1565c0", ha="center", va="center", zorder=5)
    return labels


def _place_right_labels(ax, x: float, labels: list[tuple]) -> None:
    """Right-margin labels (VWAP, entry, SL, TP) pushed apart so none hides another on a phone screen."""
    if not labels:
        return
    lo, hi = ax.get_ylim()
    gap = (hi - lo) * 0.045
    placed: list[float] = []
    for y, text, color, bold in sorted(labels, key=lambda item: item[0]):
        y = min(max(y, lo), hi)  # a level off the chart (VWAP) is labelled at the edge it lies beyond
        ty = max(y, placed[-1] + gap) if placed else y
        placed.append(ty)
        ax.text(x, ty, text, fontsize=7, va="center", color=color, weight="bold" if bold else "normal",
                bbox=_BOX if bold else None, zorder=6)


def _finish(fig: Figure) -> bytes:
    buf = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buf, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    return buf.getvalue()


def _new_axes(title: str):
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.92, bottom=0.1)  # fixed: layout engines cost ~100 ms
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=9, loc="left")
    ax.grid(True, color="#eceff1", lw=0.6, zorder=0)
    ax.tick_params(axis="y", labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _vwap_line(x: np.ndarray, bars: np.ndarray, vw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """VWAP with a gap at each session reset: joined across the reset, the old session's value and the
    new one make a vertical stroke that looks like a price move."""
    session = np.floor(bars["time"] / 86400.0)
    breaks = np.flatnonzero(session[1:] != session[:-1]) + 1
    return np.insert(x, breaks, np.nan), np.insert(np.asarray(vw, dtype=float), breaks, np.nan)


def _price_limits(bars: np.ndarray, levels: list[float]) -> tuple[float, float] | None:
    """The y-range: the candles plus the range and trade levels, never VWAP. Yesterday's VWAP can sit far
    from today's prices, and fitting it squeezed the candles into a band on a phone screen."""
    ys = [float(bars["low"].min()), float(bars["high"].max())] if len(bars) else []
    ys += [float(v) for v in levels if v is not None and np.isfinite(v)]
    if not ys:
        return None
    lo, hi = min(ys), max(ys)
    pad = (hi - lo) * 0.04 or abs(hi) * 0.001 or 1.0
    return lo - pad, hi + pad


def analysis_figure(
    candles: np.ndarray,
    analysis: AnalysisResult,
    digits: int = 2,
    strategy: StrategyScore | None = None,
) -> Figure:
    """The figure behind `render_analysis_chart` (tests read its axes)."""
    bars = candles[-MAX_BARS:]
    # trade levels only on a tradeable card: entry/SL/TP lines on a NO TRADE chart invite a bad trade
    strat = strategy or (analysis.top if analysis.passed else None)
    verdict = "TRADEABLE" if analysis.passed and strat else "NO TRADE"
    title = f"{analysis.symbol} {analysis.timeframe} · {verdict}"
    if strat is not None:
        title += f" · {strat.strategy} {strat.direction.value} R:R {strat.rr:.2f}"
    fig, ax = _new_axes(title)
    x = _draw_candles(ax, bars) if len(bars) else np.zeros(0)
    right = float(len(bars))
    labels: list[tuple] = []
    levels: list[float] = []
    if len(bars):
        vw = _vwap(candles)[-len(bars):]
        ax.plot(*_vwap_line(x, bars, vw), color="#ff9800", lw=1.1, label="VWAP", zorder=3.5)
        labels.append((float(vw[-1]), f" VWAP {_fmt(vw[-1], digits)}", "#ef6c00", False))
    if analysis.range is not None:
        _draw_range(ax, analysis.range, digits)
        z = analysis.range.critical_gaps
        levels += [analysis.range.range_high, analysis.range.range_low, z.upper_zone_end, z.lower_zone_start]
    if strat is not None:
        labels += _draw_levels(ax, strat, digits, max(right - 12, 0), right + 1)
        levels += [strat.entry, strat.stop_loss, strat.take_profit]
    limits = _price_limits(bars, levels)
    if limits is not None:
        ax.set_ylim(*limits)
    _place_right_labels(ax, right + 1, labels)
    _time_axis(ax, bars)
    if analysis.range is None and analysis.no_range is not None:
        ax.text(0.01, 0.97, analysis.no_range.message[:90], transform=ax.transAxes, fontsize=8, va="top")
    return fig


def render_analysis_chart(
    candles: np.ndarray,
    analysis: AnalysisResult,
    digits: int = 2,
    strategy: StrategyScore | None = None,
) -> bytes:
    """Recent candles, the range (high/mid/low), both critical zones, VWAP and the top trade's levels."""
    return _finish(analysis_figure(candles, analysis, digits, strategy))


def render_alert_chart(candles: np.ndarray, alert: Alert, digits: int = 2) -> bytes:
    """Exit / invalidation alert: where price went relative to the range and the trade's levels."""
    return _finish(alert_figure(candles, alert, digits))


def alert_figure(candles: np.ndarray, alert: Alert, digits: int = 2) -> Figure:
    """The figure behind `render_alert_chart` (tests read its axes)."""
    bars = candles[-MAX_BARS:]
    title = alert.title if not alert.symbol or alert.symbol in alert.title else f"{alert.symbol} · {alert.title}"
    if alert.ticket is not None and str(alert.ticket) not in title:
        title += f" · #{alert.ticket}"
    fig, ax = _new_axes(title[:90])
    x = _draw_candles(ax, bars) if len(bars) else np.zeros(0)
    right = float(len(bars))
    if alert.range_data is not None:
        _draw_range(ax, alert.range_data, digits)
    trade = alert.trade
    labels: list[tuple] = []
    if trade is not None:
        entry_i = None
        if len(bars):
            entry_i = float(np.searchsorted(bars["time"], trade.entry_time))
        x0 = entry_i if entry_i is not None and entry_i < right else max(right - 12, 0)
        for y, label, color in (
            (trade.entry_price, "entry", "#1565c0"),
            (trade.initial_sl, "SL", "#c62828"),
            (trade.tp, "TP", "#2e7d32"),
        ):
            ax.hlines(y, x0, right + 4, colors=color, lw=1.2, ls="--", zorder=4)
            labels.append((y, f" {label} {_fmt(y, digits)}", color, False))
    if alert.exit_price is not None:
        ax.scatter([right - 1 if len(bars) else 0], [alert.exit_price], marker="X", s=60, color="black", zorder=6)
        labels.append((alert.exit_price, f" exit {_fmt(alert.exit_price, digits)}", "black", True))
    # entry, SL, TP and exit of a scalp sit within a few points of each other: push the labels apart
    _place_right_labels(ax, right + 4, labels)
    _time_axis(ax, bars)
    if len(x) == 0:
        ax.text(0.5, 0.5, "no candles", transform=ax.transAxes, ha="center")
    return fig
