"""Drawing pieces shared by the card and alert charts, sized for a phone.

Telegram shows a photo about 400 px wide in the chat, so sizes are chosen for that: at 6.4 in wide a
9 pt label is ~8 px on the phone (7 pt on 7.2 in was ~5 px, unreadable without zooming). Price tags
(last, VWAP, entry, SL, TP, exit) live in a gutter right of the plot, like a trading terminal's price
scale, packed so no tag covers another, with a short leader to the price a pushed tag stands for.
"""
from __future__ import annotations

import io
from datetime import UTC, datetime

import matplotlib

matplotlib.use("Agg")  # headless; must happen before anything imports pyplot

import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import ScalarFormatter  # noqa: E402

WIDTH_IN, HEIGHT_IN, DPI = 6.4, 4.0, 125
LEFT, RIGHT, TOP, BOTTOM = 0.105, 0.775, 0.91, 0.12  # fixed: layout engines cost ~100 ms per chart
FS_TITLE, FS_TAG, FS_TICK, FS_NOTE = 10.5, 9.0, 8.5, 8.0
UP, DOWN = "#26a69a", "#ef5350"  # candles; the same green/red marks buy/sell and profit/loss everywhere
BUY, SELL = "#00897b", "#e53935"
ENTRY, SL, TP, LAST, VWAP = "#1565c0", "#c62828", "#2e7d32", "#263238", "#ef6c00"
TAG_X = 1.025  # tags start just right of the plot, in axes units
GAP_SECONDS = 2 * 3600  # a quote gap this long (a weekend, a holiday) is marked, not drawn as a price move
_BOX = dict(facecolor="white", alpha=0.8, edgecolor="none", pad=0.6)


def fmt_price(price: float, digits: int) -> str:
    return f"{price:.{digits}f}"


def new_axes(title: str, verdict: str = "", verdict_color: str = LAST):
    """A fixed-layout figure; the y axis never uses an offset (1.137 + 0.00085 read as 0.00085)."""
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    fig.subplots_adjust(left=LEFT, right=RIGHT, top=TOP, bottom=BOTTOM)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=FS_TITLE, loc="left")
    if verdict:
        # the verdict stands alone at the top right, coloured, so it is read before anything else
        fig.text(0.985, 0.985, verdict, ha="right", va="top", fontsize=FS_TITLE + 1, weight="bold",
                 color="white", bbox=dict(facecolor=verdict_color, edgecolor="none", pad=2.5))
    ax.grid(True, color="#eceff1", lw=0.7, zorder=0)
    ax.tick_params(axis="both", labelsize=FS_TICK)
    formatter = ScalarFormatter(useOffset=False)
    formatter.set_scientific(False)
    ax.yaxis.set_major_formatter(formatter)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def finish(fig: Figure) -> bytes:
    buf = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buf, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    return buf.getvalue()


def draw_candles(ax, candles: np.ndarray) -> np.ndarray:
    """Two vectorised collections (wicks, bodies): one patch per bar would cost ~10x more."""
    x = np.arange(len(candles), dtype=float)
    o, h, lo, c = candles["open"], candles["high"], candles["low"], candles["close"]
    colors = np.where(c >= o, UP, DOWN)
    ax.vlines(x, lo, h, colors=colors, linewidths=0.8, zorder=2)
    body_lo = np.minimum(o, c)
    body_hi = np.maximum(np.maximum(o, c), body_lo + (h.max() - lo.min()) * 0.002)
    plot_pt = WIDTH_IN * (RIGHT - LEFT) * 72
    width_pt = max(1.0, 0.7 * plot_pt / max(len(candles) * 1.1, 1))
    ax.vlines(x, body_lo, body_hi, colors=colors, linewidths=width_pt, zorder=3)
    return x


def gaps(candles: np.ndarray) -> np.ndarray:
    """Indices i where bar i opens GAP_SECONDS or more after bar i-1 (the market was closed)."""
    t = candles["time"].astype(float)
    return np.flatnonzero(np.diff(t) >= GAP_SECONDS) + 1 if len(t) > 1 else np.zeros(0, dtype=int)


def time_axis(ax, candles: np.ndarray, right_pad: float) -> None:
    """Bars sit side by side (a weekend takes no room); each closed-market gap gets a dashed
    separator with its length, and a tick label carries the date whenever the day changes."""
    n = len(candles)
    ax.set_xlim(-1, n + right_pad)
    if n == 0:
        return
    t = candles["time"]
    for i in gaps(candles):
        hours = (float(t[i]) - float(t[i - 1])) / 3600
        ax.axvline(i - 0.5, color="#90a4ae", lw=1.0, ls=(0, (4, 3)), zorder=1.6)
        ax.text(i - 0.5, 0.99, f"closed {hours:.0f}h" if hours < 48 else f"closed {hours / 24:.1f}d",
                transform=ax.get_xaxis_transform(), fontsize=FS_NOTE, color="#546e7a", ha="center",
                va="top", bbox=_BOX, zorder=6)
    ticks = np.unique(np.linspace(0, n - 1, num=min(5, n)).astype(int))
    labels, prev_day = [], None
    for i in ticks:
        when = datetime.fromtimestamp(int(t[i]), UTC)
        labels.append(when.strftime("%H:%M" if when.date() == prev_day else "%d %b %H:%M"))
        prev_day = when.date()
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels)
    last = datetime.fromtimestamp(int(t[-1]), UTC)
    ax.set_xlabel(f"time UTC · last bar {last:%a %d %b %Y %H:%M}", fontsize=FS_NOTE)


def draw_range(ax, rng, digits: int) -> None:
    """Range lines labelled on the left, so they never collide with the price tags on the right. Call it
    after the y-limits are set: a range edge beyond them (a previous day's high far above today's bars)
    is marked at the chart's edge with an arrow and its price instead of a label floating off the plot."""
    lo, hi = ax.get_ylim()
    z = rng.critical_gaps
    ax.axhspan(z.upper_zone_start, z.upper_zone_end, color=SELL, alpha=0.11, lw=0, zorder=1)
    ax.axhspan(z.lower_zone_start, z.lower_zone_end, color=BUY, alpha=0.11, lw=0, zorder=1)
    style = dict(fontsize=FS_NOTE, transform=ax.get_yaxis_transform(), zorder=6, bbox=_BOX)
    if lo <= z.upper_zone_start <= hi:
        ax.text(0.01, z.upper_zone_start, "sell zone", va="bottom", color=SELL, **style)
    if lo <= z.lower_zone_end <= hi:
        ax.text(0.01, z.lower_zone_end, "buy zone", va="top", color=BUY, **style)
    for y, label, ls, va in (
        (rng.range_high, "range high", "-", "bottom"),
        (rng.range_mid, "mid", ":", "bottom"),
        (rng.range_low, "range low", "-", "top"),
    ):
        if lo <= y <= hi:
            ax.axhline(y, color="#455a64", lw=1.1, ls=ls, zorder=1.5)
            ax.text(0.2, y, f"{label} {fmt_price(y, digits)}", va=va, color="#37474f", **style)
        elif label != "mid":
            off_chart_marker(ax, y, f"{label} {fmt_price(y, digits)}")


def off_chart_marker(ax, y: float, text: str) -> None:
    """An arrow at the top or bottom edge pointing to a level the window does not reach, with its price."""
    lo, hi = ax.get_ylim()
    up = y > hi
    ax.text(0.2, 0.985 if up else 0.015, f"{'▲' if up else '▼'} {text} (off the chart)", transform=ax.transAxes,
            va="top" if up else "bottom", ha="left", fontsize=FS_NOTE, color="#37474f", weight="bold",
            bbox=_BOX, zorder=8)


def fit_range_levels(bars: np.ndarray, must: list[float], range_levels: list[float],
                     stretch: float = 0.6) -> tuple[float, float] | None:
    """Y-limits for a phone: the candles and the trade levels (risk and reward boxes) always; a range level
    only while it stretches that window by at most `stretch` of its height. A far range edge fitted at any
    cost squeezed the candles and the trade's boxes into a thin band; it gets an edge marker instead."""
    base = price_limits(bars, must)
    if base is None:
        return price_limits(bars, range_levels)
    lo, hi = base
    span = hi - lo
    near = [y for y in range_levels if y is not None and np.isfinite(y) and lo - stretch * span <= y <= hi + stretch * span]
    return price_limits(bars, must + near)


def price_limits(bars: np.ndarray, levels: list[float]) -> tuple[float, float] | None:
    """The y-range: the candles plus the range and trade levels, never VWAP. Yesterday's VWAP can sit far
    from today's prices, and fitting it squeezed the candles into a band on a phone screen."""
    ys = [float(bars["low"].min()), float(bars["high"].max())] if len(bars) else []
    ys += [float(v) for v in levels if v is not None and np.isfinite(v)]
    if not ys:
        return None
    lo, hi = min(ys), max(ys)
    pad = (hi - lo) * 0.05 or abs(hi) * 0.001 or 1.0
    return lo - pad, hi + pad


def pack(ys: list[float], lo: float, hi: float, gap: float) -> list[float]:
    """Positions for labels wanted at sorted `ys`: at least `gap` apart, inside [lo, hi], each as near
    its own price as the others allow (clusters of touching labels are centred on their prices)."""
    n = len(ys)
    if n == 0:
        return []
    a, b = lo + gap / 2, hi - gap / 2
    if n > 1 and (n - 1) * gap > b - a:
        gap = max(b - a, 0.0) / (n - 1)
    clusters: list[list[int]] = []
    starts: list[float] = []

    def start_of(members: list[int]) -> float:
        want = float(np.mean([ys[i] - k * gap for k, i in enumerate(members)]))
        return min(max(want, a), b - (len(members) - 1) * gap)

    for i in range(n):
        clusters.append([i])
        starts.append(start_of([i]))
        while len(clusters) > 1 and starts[-2] + len(clusters[-2]) * gap > starts[-1]:
            merged = clusters[-2] + clusters[-1]
            clusters[-2:] = [merged]
            starts[-2:] = [start_of(merged)]
    out = [0.0] * n
    for members, s in zip(clusters, starts, strict=True):
        for k, i in enumerate(members):
            out[i] = s + k * gap
    return out


def price_tags(ax, tags: list[tuple[float, str, str, bool]]) -> None:
    """Tags in the right gutter: (price, text, colour, filled). A filled tag is white on its colour
    (trade levels, last price); the others are coloured text on white (VWAP)."""
    if not tags:
        return
    fig = ax.figure
    lo, hi = ax.get_ylim()
    height_pt = ax.get_position().height * fig.get_figheight() * 72
    gap = (hi - lo) * (FS_TAG * 1.75) / height_pt
    tags = sorted(tags, key=lambda tag: tag[0])
    placed = pack([min(max(t[0], lo), hi) for t in tags], lo, hi, gap)
    trans = ax.get_yaxis_transform()
    for (y, text, color, filled), ty in zip(tags, placed, strict=True):
        box = dict(facecolor=color, edgecolor="none", pad=1.6) if filled else dict(
            facecolor="white", edgecolor=color, lw=0.8, pad=1.6)
        ax.text(TAG_X, ty, text, transform=trans, fontsize=FS_TAG, va="center", ha="left", clip_on=False,
                color="white" if filled else color, weight="bold" if filled else "normal", bbox=box, zorder=7)
        yc = min(max(y, lo), hi)
        ax.plot([1.0, TAG_X - 0.005], [yc, ty], transform=trans, color=color, lw=1.0, clip_on=False, zorder=7)
