"""What the front ends (chat, CLI, MCP) may call besides the TradingService and the composition root.

bot/ imports only `core.service`, `core.app`, this module, and the domain and config models, so the
layers under it can be regrouped without touching a front end. These are the offline tools a trader
runs from the command line (backtests, an analysis of a data file, the journal's metrics, the store's
kill switch) and the few pure helpers the chat's charts and cards share with core.
"""
from __future__ import annotations

from core.analysis.cache import ANALYSIS_POOL, SingleFlightCache
from core.analysis.facade import (
    analyse,
    candles_from_market_data,
    configured_calendar,
    inputs_from_candles,
    window_sizes,
)
from core.analysis.indicators import session_vwap
from core.backtest.api import parse_when, run_backtest
from core.backtest.equity_chart import equity_png
from core.backtest.report import MIN_TRADES, metrics_table, write_report
from core.backtest.sweep.api import sweep
from core.backtest.sweep.grid import check_params, parse_set
from core.brokers.paper.feed import AcceleratedClock
from core.data.catalog import MarketData
from core.data.loaders import load_candles
from core.data.resample import infer_step, resample
from core.ops.alert_texts import exit_reason_words, r_text
from core.store import Store
from core.store.metrics import compute_metrics, format_report, profit_factor_text
from core.trading.killswitch import KillSwitch

__all__ = [
    "MIN_TRADES", "ANALYSIS_POOL", "AcceleratedClock", "KillSwitch", "SingleFlightCache", "MarketData", "Store", "analyse", "candles_from_market_data",
    "compute_metrics", "configured_calendar", "equity_png", "exit_reason_words", "format_report", "infer_step",
    "inputs_from_candles", "load_candles", "metrics_table", "parse_when", "profit_factor_text", "r_text",
    "resample", "run_backtest", "session_vwap", "window_sizes", "write_report", "sweep", "check_params", "parse_set",
]
