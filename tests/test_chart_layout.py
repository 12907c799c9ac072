"""The /scalp and alert charts as a trader reads them on a phone: asserted through the figure objects
(axis limits, formatters, text artists and their boxes), on real candles of all three symbols."""
from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from bot_helpers import XAU_TRADEABLE_AT, analysis_from, real_candles
from matplotlib.backends.backend_agg import FigureCanvasAgg

from bot.chart import MAX_BARS, alert_figure, analysis_figure
from bot.chart_axes import BUY, SELL, TAG_X, pack
from core.domain.models import ActiveTrade, Alert, Direction, StrategyScore

AT_BTC = 1747725300  # 2025-05-20 07:15 UTC
AT_WEEKEND = datetime(2025, 5, 19, 2, 0, tzinfo=UTC).timestamp()  # Monday: Friday's bars are in the window


def _bars(symbol: str, at: float, n: int = 320) -> np.ndarray:
    c = real_candles(symbol)
    return c[c["time"] < at][-n:]


def _quiet_eurusd() -> np.ndarray:
    """The 30 bars of the EURUSD file with the narrowest high-low span (a few pips): where an offset
    axis (ticks 0.00085 under '+1.137') used to appear."""
    c = real_candles("EURUSDc")
    spans = [(float(c[i:i + 30]["high"].max() - c[i:i + 30]["low"].min()), i) for i in range(300, len(c) - 30, 7)]
    _, i = min(spans)
    return c[i - 290:i + 30]


def _clustered(candles: np.ndarray, symbol: str, direction: Direction) -> tuple:
    """An analysis whose entry sits on the last close and SL/TP a few points away: VWAP, last, entry,
    SL and TP all want the same few pixels of the price scale (the hard case for the tags)."""
    last = float(candles["close"][-1])
    risk = float(candles["high"][-20:].max() - candles["low"][-20:].min()) * 0.15
    s = direction.sign
    strat = StrategyScore(strategy="vwap_reversion", direction=direction, entry=last, stop_loss=last - s * risk,
                          take_profit=last + s * 1.5 * risk, rr=1.5, score=80)
    a = analysis_from(candles, symbol).model_copy(update={"strategies": [strat]})
    return a, strat


def _draw(fig):
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _box(text, renderer):
    patch = text.get_bbox_patch()
    return patch.get_window_extent(renderer) if patch is not None else text.get_window_extent(renderer)


def _texts(fig):
    ax = fig.axes[0]
    out = [t for t in fig.texts + ax.texts if t.get_visible() and t.get_text().strip()]
    out += [ax.title, ax._left_title, ax.xaxis.label]
    lo, hi = ax.get_ylim()  # matplotlib keeps a tick beyond the limits, but does not draw it
    out += [t for t, y in zip(ax.get_yticklabels(), ax.get_yticks(), strict=True) if lo <= y <= hi]
    out += list(ax.get_xticklabels())
    return [t for t in out if t.get_text().strip()]


def _tags(fig):
    ax = fig.axes[0]
    return [t for t in ax.texts if t.get_position()[0] == TAG_X]


def _assert_readable(fig):
    """Every text inside the picture (not clipped), no two price tags on each other, none too small."""
    r = _draw(fig)
    w, h = fig.bbox.width, fig.bbox.height
    for t in _texts(fig):
        b = _box(t, r)
        assert b.x0 >= -1 and b.y0 >= -1 and b.x1 <= w + 1 and b.y1 <= h + 1, f"clipped: {t.get_text()!r}"
        # Telegram shows the photo ~400 px wide: below ~7 px a label needs a zoom to be read
        assert t.get_fontsize() / 72 / fig.get_figwidth() * 400 >= 6.8, t.get_text()
    boxes = [(t.get_text(), _box(t, r)) for t in _tags(fig)]
    for i, (ta, a) in enumerate(boxes):
        for tb, b in boxes[i + 1:]:
            assert not a.overlaps(b), f"{ta!r} covers {tb!r}"
    return r


@pytest.mark.parametrize("symbol, at, digits, direction", [
    ("XAUUSDc", XAU_TRADEABLE_AT, 2, Direction.LONG),
    ("BTCUSDc", AT_BTC, 2, Direction.LONG),  # six-figure prices: the widest tags
    ("BTCUSDc", AT_BTC, 2, Direction.SHORT),
    ("EURUSDc", datetime(2026, 6, 10, 10, tzinfo=UTC).timestamp(), 5, Direction.SHORT),
])
def test_tradeable_card_tags_are_inside_the_picture_and_apart(symbol, at, digits, direction):
    candles = _bars(symbol, at)
    a, strat = _clustered(candles, symbol, direction)
    fig = analysis_figure(candles, a, digits)
    _assert_readable(fig)
    tags = {t.get_text().split(" ")[0]: t.get_text() for t in _tags(fig)}
    # the entry is the last price here: one tag for both (#19), the last price named on the entry line
    assert tags == {"VWAP": tags["VWAP"],
                    "entry": f"entry {strat.entry:.{digits}f}", "SL": f"SL {strat.stop_loss:.{digits}f}",
                    "TP": f"TP {strat.take_profit:.{digits}f}"}
    assert "last = entry " in [t.get_text() for t in fig.axes[0].texts]
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    bars = candles[-MAX_BARS:]
    assert lo <= bars["low"].min() and hi >= bars["high"].max()
    assert all(lo <= y <= hi for y in (strat.entry, strat.stop_loss, strat.take_profit))
    # the side is in the title and the arrow at the entry: green pointing up for a buy, red down for a sell
    arrow, color = ("▲", BUY) if direction is Direction.LONG else ("▼", SELL)
    assert f"{direction.value.upper()} {arrow}" in ax.get_title(loc="left")
    marks = [t for t in ax.texts if t.get_text() == arrow]
    assert len(marks) == 1 and marks[0].get_color() == color and marks[0].get_position()[1] == strat.entry


def test_no_trade_card_has_a_verdict_the_last_price_and_no_trade_levels():
    candles = _bars("BTCUSDc", AT_BTC)
    fig = analysis_figure(candles, analysis_from(candles, "BTCUSDc", passed=False), 2)
    _assert_readable(fig)
    assert {t.get_text().split(" ")[0] for t in _tags(fig)} == {"VWAP", "last"}
    assert [t.get_text() for t in fig.texts] == ["NO TRADE"]
    # the last price is marked where it is: a dotted line from the last candle to the price scale
    last = float(candles["close"][-1])
    ax = fig.axes[0]
    assert any(np.allclose(np.asarray(c.get_segments())[:, :, 1], last) for c in ax.collections
               if c.get_linestyle()[0][1] is not None and len(c.get_segments()) == 1)


def test_quiet_eurusd_prices_are_written_in_full_not_as_an_offset():
    candles = _quiet_eurusd()
    bars = candles[-MAX_BARS:]
    assert bars["high"].max() - bars["low"].min() < 0.002  # a quiet stretch: the case this is about
    a = analysis_from(candles, "EURUSDc", passed=False).model_copy(update={"range": None, "strategies": []})
    fig = analysis_figure(candles, a, 5)
    _assert_readable(fig)
    ax = fig.axes[0]
    assert ax.yaxis.get_offset_text().get_text() == ""
    lo, hi = ax.get_ylim()
    shown = [(t.get_text(), y) for t, y in zip(ax.get_yticklabels(), ax.get_yticks(), strict=True) if lo <= y <= hi]
    assert len(shown) >= 3
    for text, y in shown:
        assert float(text.replace("−", "-")) == pytest.approx(y, abs=1e-9) and text.startswith("1.")


def test_a_weekend_is_squeezed_out_and_marked():
    candles = _bars("XAUUSDc", AT_WEEKEND)
    bars = candles[-MAX_BARS:]
    gap = int(np.flatnonzero(np.diff(bars["time"]) > 86400)[0]) + 1  # Friday's close -> Sunday's open
    fig = analysis_figure(candles, analysis_from(candles, passed=False), 2)
    _assert_readable(fig)
    ax = fig.axes[0]
    wicks = np.asarray(ax.collections[0].get_segments())
    assert np.array_equal(wicks[:, 0, 0], np.arange(len(bars)))  # one slot per bar: no empty weekend
    separators = [ln for ln in ax.get_lines() if list(ln.get_xdata()) == [gap - 0.5, gap - 0.5]]
    hours = (float(bars["time"][gap]) - float(bars["time"][gap - 1])) / 3600
    assert len(separators) == 1 and hours > 48
    assert [t.get_text() for t in ax.texts if t.get_text().startswith("closed")] == [f"closed {hours / 24:.1f}d"]
    # the day changes inside the window: the tick labels say which day each hour belongs to
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0].startswith(datetime.fromtimestamp(int(bars["time"][0]), UTC).strftime("%d %b"))
    assert any(lab.startswith("18 May") or lab.startswith("19 May") for lab in labels[1:])


def _trade(candles: np.ndarray, direction: Direction, breakeven: bool = False) -> ActiveTrade:
    entry = float(candles["close"][-20])
    risk = float(candles["high"][-40:].max() - candles["low"][-40:].min()) * 0.3
    s = direction.sign
    return ActiveTrade(ticket=9, symbol="BTCUSDc", strategy="bb_fade", direction=direction, entry_price=entry,
                       sl=entry if breakeven else entry - s * risk, tp=entry + s * 1.5 * risk,
                       initial_sl=entry - s * risk, volume=0.01, entry_time=float(candles["time"][-20]),
                       breakeven_moved=breakeven)


def test_breakeven_alert_shows_the_moved_stop_and_where_it_was():
    candles = _bars("BTCUSDc", AT_BTC, 120)
    trade = _trade(candles, Direction.LONG, breakeven=True)
    alert = Alert(kind="breakeven_moved", severity="info", title="BTCUSDc: stop moved to breakeven", text="moved",
                  symbol="BTCUSDc", ticket=9, created_at=float(candles["time"][-1]), trade=trade)
    fig = alert_figure(candles, alert, 2)
    _assert_readable(fig)
    tags = sorted(t.get_text() for t in _tags(fig))
    e, was = f"{trade.entry_price:.2f}", f"{trade.initial_sl:.2f}"
    assert tags == sorted([f"entry {e}", f"SL {e}", f"SL was {was}", f"TP {trade.tp:.2f}",
                           f"last {float(candles['close'][-1]):.2f}"])
    ax = fig.axes[0]
    assert ax.get_title(loc="left") == "BTCUSDc: stop moved to breakeven · #9 · LONG ▲"


@pytest.mark.parametrize("direction, win", [(Direction.LONG, True), (Direction.SHORT, False)])
def test_exit_alert_badge_and_marker_say_win_or_loss(direction, win):
    candles = _bars("BTCUSDc", AT_BTC, 120)
    trade = _trade(candles, direction)
    exit_price = trade.tp if win else trade.initial_sl
    alert = Alert(kind="exit_executed", severity="high", title="BTCUSDc: range scalp closed", text="closed",
                  symbol="BTCUSDc", ticket=9, created_at=float(candles["time"][-1]), trade=trade,
                  range_data=analysis_from(candles, "BTCUSDc").range, exit_price=exit_price)
    fig = alert_figure(candles, alert, 2)
    _assert_readable(fig)
    badge = fig.texts[0]
    r = trade.r_multiple(exit_price)
    assert badge.get_text() == f"{r:+.2f} R" and (r > 0) is win
    colour = "#2e7d32" if win else "#c62828"
    assert badge.get_bbox_patch().get_facecolor()[:3] == pytest.approx(_rgb(colour))
    marker = fig.axes[0].collections[-1]
    assert marker.get_offsets()[0][1] == exit_price
    assert marker.get_facecolor()[0][:3] == pytest.approx(_rgb(colour))
    assert "last" not in {t.get_text().split(" ")[0] for t in _tags(fig)}  # the exit is the last price


def _rgb(hex_colour: str) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    return to_rgb(hex_colour)


def test_pack_keeps_labels_apart_inside_the_axis_and_near_their_prices():
    assert pack([5.0], 0.0, 10.0, 1.0) == [5.0]  # alone: exactly at its price
    ys = [2.0, 2.0, 2.1, 7.0]
    out = pack(ys, 0.0, 10.0, 1.0)
    assert out[3] == 7.0  # far from the cluster: untouched
    assert all(b - a >= 1.0 - 1e-9 for a, b in zip(out, out[1:], strict=False))
    assert np.mean(out[:3]) == pytest.approx(np.mean(ys[:3]), abs=0.1)  # centred on the cluster
    edge = pack([9.9, 10.0, 10.0], 0.0, 10.0, 1.0)  # at the top edge: pushed down, not out
    assert edge == pytest.approx([7.5, 8.5, 9.5])
    crowded = pack([5.0] * 12, 0.0, 10.0, 1.0)  # more than fit: spread evenly over the whole axis
    assert crowded[0] >= 0.0 and crowded[-1] <= 10.0 and len(set(crowded)) == 12
