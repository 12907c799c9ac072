"""Review of the backtest's files: CSV parses back to the trades, JSON round-trips, times are UTC and
labelled, the PNG renders for 0, 1 and many trades and names the run's own timeframe."""
from __future__ import annotations

import csv
import json
from datetime import UTC, datetime

import pytest
from test_metrics import _trade

from core.backtest.equity_chart import equity_figure
from core.backtest.report import TRADE_FIELDS, BacktestReport, write_report
from core.domain.models import ClosedTrade, Direction
from core.store.metrics import MetricsReport, compute_metrics, net_pnl


def _report(trades, timeframe="M5") -> BacktestReport:
    m = compute_metrics(trades, starting_balance=1000.0, bootstrap_resamples=100)
    end = max([t.exit_time for t in trades], default=1_700_000_000.0) + 300
    return BacktestReport(symbol="XAUUSDc", timeframe=timeframe, bars=120, start=1_699_990_000.0, end=end,
                          strategy_mode="auto", config_version="test", starting_balance=1000.0,
                          final_balance=m.equity[-1] if m.equity else 1000.0, metrics=m, trades=trades)


def _journal(n):
    return [_trade(i, (13.37 if i % 3 else -7.21) * (1 + i / 10), 1.3 if i % 3 else -1.0, commission=-0.14,
                   direction=Direction.SHORT if i % 2 else Direction.LONG, minutes=7.5 + i)
            for i in range(n)]


@pytest.mark.parametrize("n", [0, 1, 37])
def test_files_parse_back_for_0_1_and_many_trades(tmp_path, n):
    trades = _journal(n)
    files = write_report(_report(trades), tmp_path)
    rows = list(csv.DictReader(open(files["trades_csv"], newline="")))
    assert len(rows) == n
    for row, t in zip(rows, trades, strict=True):
        for col in TRADE_FIELDS:
            if col == "net_pnl":
                assert float(row[col]) == pytest.approx(net_pnl(t))
            elif col == "direction":
                assert row[col] == t.direction.value
            elif isinstance(getattr(t, col), float):
                assert float(row[col]) == getattr(t, col)  # full precision, not a rounded display
            else:
                assert row[col] == str(getattr(t, col))
        # the UTC columns say UTC in their names and are the epoch seconds in UTC
        assert row["entry_utc"] == datetime.fromtimestamp(t.entry_time, UTC).strftime("%Y-%m-%d %H:%M")
        assert row["exit_utc"] == datetime.fromtimestamp(t.exit_time, UTC).strftime("%Y-%m-%d %H:%M")
    again = [ClosedTrade.from_dict(d) for d in json.loads(open(files["trades_json"]).read())]
    assert again == trades
    m = MetricsReport.model_validate_json(open(files["metrics_json"]).read())
    assert m == compute_metrics(trades, starting_balance=1000.0, bootstrap_resamples=100)
    assert m.trades == n and len(m.equity) == n
    png = open(files["equity_png"], "rb").read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads(open(files["summary_json"]).read())
    assert summary["final_balance"] == pytest.approx(1000.0 + sum(net_pnl(t) for t in trades))


def test_the_chart_names_the_runs_timeframe_and_utc():
    import matplotlib.pyplot as plt

    fig = equity_figure(_report(_journal(5), timeframe="M15"))
    try:
        label = fig.axes[1].get_xlabel()
        assert "120 M15 bars" in label and "M5" not in label and "(UTC)" in label
    finally:
        plt.close(fig)
