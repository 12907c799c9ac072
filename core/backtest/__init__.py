"""Backtests on PaperBroker step mode through the live analysis, execution and exit code.

Public API: `run_backtest` (core.backtest.api), `BacktestEngine`/`BacktestSpec` (engine),
`BacktestReport` + `write_report`/`equity_png` (report), `Signal` (signals), `run_peer` (peer).
"""
