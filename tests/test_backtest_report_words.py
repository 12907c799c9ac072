"""The backtest table explains itself: period and currency, money at risk for winners and losers, and
"too few trades" for groups too small to mean anything (a new user's report in issue 17)."""
from __future__ import annotations

import io

import pytest
from rich.console import Console

from core.backtest.api import run_backtest
from core.backtest.report import MIN_TRADES, metrics_table
from core.config.model import load_config, market_data_dir
from core.domain.models import ClosedTrade, Direction
from core.store.metrics import compute_metrics, risk_money
from tests.backtest_probe import edge_fade

XAU = market_data_dir() / "budimanlai__forex-tick" / "data" / "XAUUSD_M5.csv"


def _text(table) -> str:
    buf = io.StringIO()
    Console(file=buf, width=200).print(table)
    return buf.getvalue()


@pytest.fixture(scope="module")
def report():
    return run_backtest(load_config(), "XAUUSDc", data=str(XAU), end="2025-01-20", analyse_fn=edge_fade,
                        split_time=None)


def test_table_has_period_currency_and_risk_in_money(report):
    text = _text(metrics_table(report))
    assert "2025-01-" in text and "UTC" in text and f"money in {report.currency}" in text
    o = report.metrics.overall
    assert o.wins and o.losses and o.avg_risk_money_win > 0 and o.avg_risk_money_loss > 0
    assert f"avg risk {report.currency} (winners)" in text and f"{o.avg_risk_money_loss:.2f}" in text


def test_small_groups_say_too_few_trades(report):
    text = _text(metrics_table(report))
    small = [k for k, b in report.metrics.by_session.items() if b.trades < MIN_TRADES]
    big = [k for k, b in report.metrics.by_session.items() if b.trades >= MIN_TRADES]
    assert small, "the probe data should have a small session group"
    for line in text.splitlines():
        for k in small:
            if f"session {k} " in line:
                assert "too few trades" in line
        for k in big:
            if f"session {k} " in line:
                assert "too few trades" not in line


def test_risk_money_is_the_money_at_the_initial_stop():
    # long 0.01 lot of a 100-oz contract: 1.00 of price = 1.00 of money; stop 2.00 away = 2.00 at risk
    t = ClosedTrade(ticket=1, symbol="XAUUSDc", strategy="x", direction=Direction.LONG, volume=0.01,
                    entry_price=100.0, exit_price=103.0, initial_sl=98.0, tp=104.0, entry_time=0.0,
                    exit_time=60.0, pnl=3.0, commission=0.0, r_multiple=1.5, exit_reason="take_profit")
    assert risk_money(t) == pytest.approx(2.0)
    loser = t.model_copy(update={"ticket": 2, "exit_price": 98.0, "pnl": -2.0, "r_multiple": -1.0})
    wide = loser.model_copy(update={"ticket": 3, "initial_sl": 96.0, "exit_price": 96.0, "pnl": -4.0})
    m = compute_metrics([t, loser, wide]).overall
    assert m.avg_risk_money_win == pytest.approx(2.0) and m.avg_risk_money_loss == pytest.approx(3.0)
