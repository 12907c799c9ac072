"""The backtest's equity and drawdown PNG, readable in a chat on a phone as well as on a desktop.

Drawn with matplotlib's object API on an Agg canvas (no pyplot): the bot renders it in a worker thread,
where pyplot's global figure registry is not safe. Money is always labelled with the account currency
and the worst drawdown also as % of the peak it fell from: "-20.88" alone does not say whether that
hurt. The y axes never use an offset ("+1e4" above ticks 0.5, 1.0 read as a balance of 1.0).
"""
from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import numpy as np

from core.store.metrics import profit_factor_text

WIDTH_IN, HEIGHT_IN, DPI = 7.2, 5.4, 120  # ~860 px wide: 10 pt text is ~7.5 px on a 400 px phone preview
FS, FS_TITLE, FS_NOTE = 10.0, 11.0, 8.5
EQUITY, DRAWDOWN, GAIN, LOSS = "#1565c0", "#c62828", "#2e7d32", "#c62828"
_BOX = {"facecolor": "white", "alpha": 0.85, "edgecolor": "#cfd8dc", "pad": 3}
_LABEL_BOX = {"facecolor": "white", "alpha": 0.85, "edgecolor": "none", "pad": 1.5}


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


def _plain_numbers(ax) -> None:
    from matplotlib.ticker import ScalarFormatter

    formatter = ScalarFormatter(useOffset=False)
    formatter.set_scientific(False)
    ax.yaxis.set_major_formatter(formatter)


def _money(value: float, currency: str) -> str:
    return f"{value:+,.2f} {currency}".strip()


def equity_figure(report: Any):  # a BacktestReport (report.py imports this module, not the reverse)
    """Equity (top) and drawdown (bottom) against exit time (UTC), one step per closed trade."""
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    m, o, cur = report.metrics, report.metrics.overall, report.currency
    times = [datetime.fromtimestamp(report.start, UTC)] + [datetime.fromtimestamp(t, UTC) for t in m.equity_times]
    equity = np.array([report.starting_balance] + list(m.equity), dtype=float)
    # the curve runs to the end of the tested period: flat after the last exit is part of the result
    end = datetime.fromtimestamp(max(report.end, report.start), UTC)
    if end > times[-1]:
        times.append(end)
        equity = np.append(equity, equity[-1])
    peak = np.maximum.accumulate(equity)
    dd = equity - peak
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    fig.subplots_adjust(left=0.13, right=0.97, top=0.835, bottom=0.1, hspace=0.08)
    ax1, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.4]})
    fig.suptitle(f"{report.symbol} {report.timeframe} backtest · {_iso(report.start)} → {_iso(report.end)} UTC"
                 f" · strategy {report.strategy_mode}", fontsize=FS_TITLE, x=0.02, ha="left", y=0.975)
    ax1.step(times, equity, where="post", color=EQUITY, lw=1.6)
    ax1.axhline(report.starting_balance, color="#78909c", lw=0.9, ls="--")
    ax1.set_ylabel(f"equity ({cur})" if cur else "equity", fontsize=FS)
    pf = profit_factor_text(o)
    wr = "-" if o.win_rate is None else f"{100 * o.win_rate:.1f}%"
    exp_r = "-" if o.expectancy_r is None else f"{o.expectancy_r:+.3f} R"
    dd_pct = "" if o.max_drawdown_pct is None else f" ({o.max_drawdown_pct:.2f}% of peak)"
    # the figures sit between the title and the plot, where they can never cover the curve
    fig.text(0.02, 0.925, f"{o.trades} trades · net {_money(o.net_pnl, cur)} · win {wr} · exp {exp_r} · PF {pf}",
             fontsize=FS - 0.5, va="top", color=GAIN if o.net_pnl > 0 else LOSS if o.net_pnl < 0 else "black")
    fig.text(0.02, 0.885, f"max drawdown {_money(-o.max_drawdown or 0.0, cur)}{dd_pct}", fontsize=FS - 0.5, va="top",
             color=DRAWDOWN)
    if o.trades == 0:
        ax1.text(0.5, 0.45, "no trades in this period:\nthe strategy found no setup", transform=ax1.transAxes,
                 ha="center", va="center", fontsize=FS + 1, color="#455a64", bbox=_BOX)
    if m.split_time is not None and m.in_sample is not None and m.out_of_sample is not None and o.trades:
        split = datetime.fromtimestamp(m.split_time, UTC)
        for ax in (ax1, ax2):
            ax.axvline(split, color="#555555", lw=1.0, ls=":")
        ax1.text(split, 0.03, f" out-of-sample → (n={m.out_of_sample.trades}) ", transform=ax1.get_xaxis_transform(),
                 fontsize=FS_NOTE, color="#455a64", ha="left", va="bottom", bbox=_LABEL_BOX)
        ax1.text(split, 0.03, f" ← in-sample (n={m.in_sample.trades}) ", transform=ax1.get_xaxis_transform(),
                 fontsize=FS_NOTE, color="#455a64", ha="right", va="bottom", bbox=_LABEL_BOX)
    ax2.fill_between(times, dd, 0, step="post", color=DRAWDOWN, alpha=0.45, lw=0)
    ax2.step(times, dd, where="post", color=DRAWDOWN, lw=0.8)
    ax2.set_ylabel(f"drawdown ({cur})" if cur else "drawdown", fontsize=FS)
    if dd.min() < 0:
        ax2.set_ylim(dd.min() * 1.15, -dd.min() * 0.08)
    else:
        ax2.set_ylim(-1.0, 0.1)
    ax2.set_xlabel(f"exit time (UTC) · {report.bars} {report.timeframe} bars · costs: spread "
                   f"{report.costs.get('spread', '?')}, slippage {report.costs.get('slippage_points', '?')} pts",
                   fontsize=FS_NOTE)
    locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
    ax2.xaxis.set_major_locator(locator)
    # no offset text ("2025-Mar" under the last tick collided with the axis label): the year is in the title
    ax2.xaxis.set_major_formatter(mdates.ConciseDateFormatter(
        locator, tz=UTC, show_offset=False, formats=["%Y", "%b", "%d %b", "%H:%M", "%H:%M", "%S"],
        zero_formats=["", "%Y", "%b", "%d %b", "%d %b", "%H:%M"]))
    for ax in (ax1, ax2):
        _plain_numbers(ax)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=FS)
        ax.margins(x=0.01)
    return fig


def equity_png(report: Any) -> bytes:
    """The equity/drawdown chart as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = equity_figure(report)
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, pil_kwargs={"compress_level": 6})
    return buf.getvalue()
