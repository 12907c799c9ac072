"""Review: the max drawdown % is the deepest fall relative to its own peak, not the % at the money maximum."""
from __future__ import annotations

import pytest
from test_metrics import _trade

from core.store.metrics import block_rows, compute_metrics, format_report


def test_drawdown_pct_is_the_largest_relative_fall_not_the_pct_at_the_largest_money_fall():
    # equity 1000 -> 500 (-50 % of the 1000 peak) -> 10500 -> 9500 (-1000 money, only 9.5 % of 10500)
    trades = [_trade(0, -500.0, -1.0), _trade(1, 10_000.0, 5.0), _trade(2, -1000.0, -1.0)]
    o = compute_metrics(trades, starting_balance=1000.0, split_fraction=None, bootstrap_resamples=0).overall
    assert o.max_drawdown == pytest.approx(1000.0)  # the money figure: the largest fall in account currency
    assert o.max_drawdown_pct == pytest.approx(50.0)  # the % figure: the largest fall relative to its peak


def test_a_first_trade_loss_is_a_drawdown_from_the_starting_balance():
    o = compute_metrics([_trade(0, -200.0, -1.0), _trade(1, 50.0, 0.5)], starting_balance=1000.0,
                        split_fraction=None, bootstrap_resamples=0).overall
    assert o.max_drawdown == pytest.approx(200.0) and o.max_drawdown_pct == pytest.approx(20.0)


def test_the_report_text_and_the_backtest_table_show_the_relative_figure_with_its_count():
    trades = [_trade(0, -500.0, -1.0), _trade(1, 10_000.0, 5.0), _trade(2, -1000.0, -1.0)]
    rep = compute_metrics(trades, starting_balance=1000.0, bootstrap_resamples=0)
    assert "max drawdown % of peak         50.00      3" in format_report(rep)
    # block_rows feeds the backtest's rich table too, which had no % figure at all
    assert ("max drawdown % of peak", "50.00", 3) in block_rows(rep.overall)
    # without a starting balance there is no % (a per-strategy block): shown as '-', not 0
    assert ("max drawdown % of peak", "-", 3) in block_rows(compute_metrics(trades).overall)
