"""Review: a trade without an initial stop has no R; it must not enter the R figures as a number.

The journal records such a trade (an adopted orphan with no stop loss) with an R computed against a
risk of |entry - 0| = the entry price, e.g. +0.005 R for a 10-dollar gold win: a near-zero R that
dragged every R average towards zero. Money figures still count it; R figures skip it and say so.
"""
from __future__ import annotations

import pytest
from test_metrics import _trade

from core.store.metrics import block_rows, compute_metrics


def _no_stop(i, pnl):
    t = _trade(i, pnl, pnl / 2000.0)  # what the journal stores: (exit - entry) / |entry - 0|
    return t.model_copy(update={"initial_sl": 0.0})


def _zero_risk(i, pnl):
    t = _trade(i, pnl, 0.0)  # stop at the entry price: risk 0, the journal stores 0 R
    return t.model_copy(update={"initial_sl": t.entry_price})


def test_trades_without_initial_risk_are_left_out_of_the_r_figures_only():
    trades = [_trade(0, 20.0, 2.0), _trade(1, -10.0, -1.0), _no_stop(2, 10.0), _zero_risk(3, 5.0)]
    rep = compute_metrics(trades, starting_balance=1000.0, split_fraction=None, bootstrap_resamples=200)
    o = rep.overall
    assert o.trades == 4 and o.r_trades == 2
    assert o.net_pnl == pytest.approx(25.0) and o.expectancy_money == pytest.approx(25.0 / 4)
    assert o.avg_r == pytest.approx(0.5) and o.expectancy_r == pytest.approx(0.5)
    assert o.median_r == pytest.approx(0.5)
    assert o.avg_win_r == pytest.approx(2.0) and o.avg_loss_r == pytest.approx(-1.0)
    assert rep.expectancy_r_ci.trades == 2 and rep.expectancy_r_ci.mean == pytest.approx(0.5)
    assert rep.expectancy_money_ci.trades == 4
    rows = {label: (value, n) for label, value, n in block_rows(o)}
    assert rows["expectancy R"] == ("0.500", 2) and rows["net P&L"] == ("25.00", 4)


def test_a_journal_of_only_undefined_r_shows_no_r():
    o = compute_metrics([_no_stop(0, 10.0)], bootstrap_resamples=0).overall
    assert o.r_trades == 0 and o.avg_r is None and o.expectancy_r is None and o.median_r is None
    assert o.net_pnl == pytest.approx(10.0)


def test_the_text_report_names_the_r_count_where_it_differs():
    from core.store.metrics import format_report

    text = format_report(compute_metrics([_trade(0, 20.0, 2.0), _no_stop(1, 10.0)], bootstrap_resamples=0))
    assert "strategy bb_fade: n=2 net=30.00 win%=100.0 expR=2.000 (R over n=1)" in text
    assert "expectancy R                   2.000      1" in text
