import io

import numpy as np
import pytest
from bot_helpers import analysis_from, real_candles

from bot import presenter
from bot.chart import render_alert_chart, render_analysis_chart
from bot.commands import parse_command
from bot.replies import Button, parse_payload
from core.domain.models import ActiveTrade, Alert, Direction

PNG = b"\x89PNG\r\n\x1a\n"


def _pixels(png: bytes) -> np.ndarray:
    import matplotlib.image as mpimg

    return mpimg.imread(io.BytesIO(png), format="png")


def test_analysis_chart_is_a_phone_sized_png_with_zones_drawn():
    candles = real_candles()[:3000]
    a = analysis_from(candles)
    png = render_analysis_chart(candles, a, digits=2)
    assert png.startswith(PNG)
    img = _pixels(png)
    h, w = img.shape[:2]
    assert 300 <= h <= 500 and 600 <= w <= 900
    # the sell zone is shaded red-ish and the buy zone green-ish: both tints must be present
    rgb = img[..., :3]
    reddish = ((rgb[..., 0] > 0.95) & (rgb[..., 1] < 0.93) & (rgb[..., 1] > 0.8)).sum()
    greenish = ((rgb[..., 1] > 0.9) & (rgb[..., 0] < 0.93) & (rgb[..., 0] > 0.8)).sum()
    assert reddish > 1000 and greenish > 1000


def test_no_trade_chart_and_empty_candles_still_render():
    candles = real_candles()[:500]
    a = analysis_from(candles, passed=False).model_copy(update={"strategies": []})
    assert render_analysis_chart(candles, a).startswith(PNG)
    assert render_analysis_chart(candles[:0], a).startswith(PNG)


def test_alert_chart_marks_exit():
    candles = real_candles()[:800]
    a = analysis_from(candles)
    s = a.strategies[0]
    trade = ActiveTrade(ticket=7, symbol="XAUUSDc", strategy=s.strategy, direction=s.direction, entry_price=s.entry,
                        sl=s.stop_loss, tp=s.take_profit, initial_sl=s.stop_loss, volume=0.01,
                        entry_time=float(candles["time"][-30]), range_data=a.range)
    alert = Alert(kind="exit_executed", severity="high", title="EXIT - XAUUSDc #7", text="closed", symbol="XAUUSDc",
                  ticket=7, created_at=float(candles["time"][-1]), trade=trade, range_data=a.range,
                  exit_price=s.take_profit)
    assert render_alert_chart(candles, alert).startswith(PNG)


def test_card_lists_verdict_range_failures_and_levels():
    candles = real_candles()[:3000]
    a = analysis_from(candles, passed=False)
    card = presenter.analysis_card(a, digits=2)
    lines = card.splitlines()
    assert lines[1].startswith("❌ NO TRADE")
    assert " • session: outside allowed sessions (weekend)" in lines
    s = a.strategies[0]
    assert f"entry {s.entry:.2f}" in card and f"SL {s.stop_loss:.2f}" in card and f"TP {s.take_profit:.2f}" in card
    assert "R:R 1.50" in card
    assert max(len(x) for x in lines) <= 60  # readable on a phone
    ok = presenter.analysis_card(analysis_from(candles), digits=2)
    assert ok.splitlines()[1].startswith("✅ TRADEABLE")


def test_parse_command_and_payloads():
    assert parse_command("/Scalp@MoneyBot btcusdc") == ("scalp", ["btcusdc"])
    assert parse_command("hello") is None
    assert parse_command("/") is None
    assert parse_payload("a:abc123") == ("a", "abc123")
    for bad in ("", "a:", "z:1", "a:" + "x" * 80, "a:../etc", None, "a:1 2"):
        assert parse_payload(bad) is None
    with pytest.raises(ValueError):
        Button("x", "a:" + "y" * 70)


def test_outcome_text_reads_core_outcomes():
    from core.domain.models import ProposalState
    from core.trading.proposal_outcome import ProposalOutcome

    done = ProposalOutcome(proposal_id="p1", state=ProposalState.EXECUTED, ok=True, message="Executed: ticket 5 at 2650.1.",
                           ticket=5, fill_price=2650.1, symbol="XAUUSDc")
    assert presenter.outcome_text(done).startswith("✅ Executed at 2650.10 · ticket 5")
    exp = ProposalOutcome(proposal_id="p1", state=ProposalState.EXPIRED, ok=False, message="This proposal expired.")
    assert presenter.outcome_text(exp) == "⌛ This proposal expired."
    assert Direction.LONG.sign == 1


def test_a_not_viable_strategy_keeps_its_why_on_the_card():
    """Reasons run "<setup>. Not tradeable: <why>" and were cut at 90 characters, mid-"why" for ~10 %."""
    from core.domain.models import StrategyScore

    why = "Not tradeable: the target is only 0.6 R away once capped at the range top, below the 1.0 R minimum."
    s = StrategyScore(strategy="bb_fade", direction=Direction.LONG, entry=100.0, stop_loss=99.0, take_profit=100.6,
                      rr=0.6, score=55, viable=False,
                      reason="The last candle pierced the lower Bollinger band at the range bottom and closed back inside. "
                             + why)
    lines = presenter.strategy_lines(1, s, 2)
    assert lines[-1].strip() == why and "(not viable)" in lines[0]
