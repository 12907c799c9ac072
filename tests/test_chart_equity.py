"""The backtest equity/drawdown PNG read as a trader would: full balances in the account currency, the
worst drawdown in money and %, nothing clipped, and an empty run that says so (real data)."""
from __future__ import annotations

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from core.backtest.api import run_backtest
from core.backtest.equity_chart import equity_figure, equity_png
from core.config.loading import load_config
from core.config.paths import market_data_dir

XAU = market_data_dir() / "budimanlai__forex-tick" / "data" / "XAUUSD_M5.csv"


@pytest.fixture(scope="module")
def cfg():
    return load_config()


@pytest.fixture(scope="module")
def eurusd(cfg):
    """Three days of EURUSD at 0.01 lot: a few USD of P&L on a 10,000 balance, where matplotlib used
    to print '+1e4' above ticks reading 0.5, 1.0, 1.5."""
    return run_backtest(cfg, "EURUSDc", days=3)


def _stats(fig) -> list[str]:
    """The two lines of figures between the title and the plot."""
    return [t.get_text() for t in fig.texts if t is not fig._suptitle]


def _drawn(fig):
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _visible_texts(fig):
    out = [t for t in fig.texts if t.get_text().strip()]
    for ax in fig.axes:
        out += [t for t in ax.texts if t.get_text().strip()] + [ax.yaxis.label, ax.xaxis.label]
        lo, hi = ax.get_ylim()
        out += [t for t, y in zip(ax.get_yticklabels(), ax.get_yticks(), strict=True) if lo <= y <= hi and t.get_text()]
    lo, hi = fig.axes[1].get_xlim()
    out += [t for t, x in zip(fig.axes[1].get_xticklabels(), fig.axes[1].get_xticks(), strict=True)
            if lo <= x <= hi and t.get_text()]
    return out  # fig.texts holds the suptitle too


def _shared_area(a, b) -> float:
    return max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0)) * max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))


def _assert_inside_and_apart(fig):
    r = _drawn(fig)
    w, h = fig.bbox.width, fig.bbox.height
    texts = _visible_texts(fig)
    boxes = []
    for t in texts:
        b = t.get_window_extent(r)
        assert b.x0 >= -1 and b.y0 >= -1 and b.x1 <= w + 1 and b.y1 <= h + 1, f"clipped: {t.get_text()!r}"
        boxes.append((t.get_text(), b))
    for i, (ta, a) in enumerate(boxes):
        for tb, b in boxes[i + 1:]:
            assert _shared_area(a, b) < 1.0, f"{ta!r} overlaps {tb!r}"  # touching is fine


def test_balances_are_written_in_full_with_the_currency(eurusd):
    o = eurusd.metrics.overall
    assert o.trades > 0 and abs(o.net_pnl) < 100  # small P&L on a large balance: the offset case
    fig = equity_figure(eurusd)
    _assert_inside_and_apart(fig)
    ax1, ax2 = fig.axes
    for ax in (ax1, ax2):
        assert ax.yaxis.get_offset_text().get_text() == ""
    assert ax1.get_ylabel() == "equity (USD)" and ax2.get_ylabel() == "drawdown (USD)"
    lo, hi = ax1.get_ylim()
    ticks = [(t.get_text(), y) for t, y in zip(ax1.get_yticklabels(), ax1.get_yticks(), strict=True) if lo <= y <= hi]
    assert len(ticks) >= 3
    for text, y in ticks:
        assert float(text.replace("−", "-").replace(",", "")) == pytest.approx(y) and y > 9000
    stats = _stats(fig)
    assert f"{o.trades} trades · net {o.net_pnl:+,.2f} USD" in stats[0]
    assert stats[1] == f"max drawdown {-o.max_drawdown:+,.2f} USD ({o.max_drawdown_pct:.2f}% of peak)"
    # the drawdown panel is money below zero, reaching the worst drawdown
    assert ax2.get_ylim()[0] <= -o.max_drawdown < 0 <= ax2.get_ylim()[1]


def test_the_date_axis_has_no_offset_label_under_the_last_tick(eurusd):
    fig = equity_figure(eurusd)
    _drawn(fig)
    assert fig.axes[1].xaxis.get_offset_text().get_text() == ""
    labels = [t.get_text() for t in fig.axes[1].get_xticklabels() if t.get_text()]
    assert labels and all(len(lab.split()) == 2 or ":" in lab for lab in labels)  # "08 Jul", not "08"


def test_an_empty_run_still_draws_a_clear_chart(cfg):
    rep = run_backtest(cfg, "XAUUSDc", data=str(XAU), end="2025-01-06", analyse_fn=_flat)
    assert rep.trades == []
    fig = equity_figure(rep)
    _assert_inside_and_apart(fig)
    notes = [t.get_text() for t in fig.axes[0].texts]
    assert any(n.startswith("no trades in this period") for n in notes)
    assert _stats(fig)[1] == "max drawdown +0.00 USD"
    assert equity_png(rep)[:8] == b"\x89PNG\r\n\x1a\n"


def test_drawing_leaves_pyplot_alone_and_stays_small(eurusd):
    """The bot draws this in a worker thread, where pyplot's figure registry is not safe to touch."""
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    png = equity_png(eurusd)
    assert plt.get_fignums() == before
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 150_000


def _flat(symbol, broker, cfg, clock):
    from core.domain.models import AnalysisResult

    return AnalysisResult(symbol=symbol, timeframe="M5", as_of=clock.now())
