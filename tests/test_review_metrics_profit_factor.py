"""Review: with no losing trade the profit factor is unbounded; the text must say so, not show '-'.

'-' is what a figure without data shows (no trades); a trader reading it for a journal of winners
only would take it for 'unknown'. JSON keeps None (JSON has no infinity).
"""
from __future__ import annotations

from test_metrics import _trade

from core.store.metrics import block_rows, compute_metrics, format_report, profit_factor_text


def _pf_row(rep):
    return next((v, n) for label, v, n in block_rows(rep.overall) if label == "profit factor")


def test_all_winners_show_no_losses_instead_of_a_dash():
    rep = compute_metrics([_trade(0, 5.0, 1.0), _trade(1, 7.0, 1.4)], bootstrap_resamples=0)
    assert rep.overall.profit_factor is None and rep.overall.gross_loss == 0.0
    assert str(rep.overall.gross_loss) == "0.0"  # not -0.0 in the JSON
    assert _pf_row(rep) == ("no losses", 2)
    assert "no losses" in format_report(rep)


def test_no_trades_and_only_losers_and_breakevens():
    assert profit_factor_text(compute_metrics([]).overall) == "-"
    losers = compute_metrics([_trade(0, -5.0, -1.0)], bootstrap_resamples=0)
    assert _pf_row(losers) == ("0.00", 1)
    flat = compute_metrics([_trade(0, 0.0, 0.0)], bootstrap_resamples=0)
    assert _pf_row(flat) == ("-", 1)  # nothing won, nothing lost: no ratio at all
