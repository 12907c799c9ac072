"""Render time and PNG size of every chart the bot sends, on real candles.

Charts: the /scalp card (XAUUSDc tradeable with entry/SL/TP, BTCUSDc NO TRADE, EURUSDc 5-digit), an exit
alert and a breakeven alert (BTCUSDc), and the backtest equity/drawdown PNG (3 days of EURUSDc). Each
is rendered REPEATS times after one warm-up; the figure is figure building + Agg draw + PNG encoding,
which is what the bot does in a worker thread per chart. Targets: /scalp chart p50 <= 150 ms
(it is on the reply's critical path), every PNG < 150 KB (Telegram on a phone).

Run: .venv/bin/python bench/charts.py
"""
from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bot_helpers import XAU_TRADEABLE_AT, analysis_from, real_candles  # noqa: E402

from bot.chart import render_alert_chart, render_analysis_chart  # noqa: E402
from core.backtest.api import run_backtest  # noqa: E402
from core.backtest.equity_chart import equity_png  # noqa: E402
from core.config.loading import load_config  # noqa: E402
from core.domain.models import ActiveTrade, Alert, Direction  # noqa: E402

REPEATS = 20
AT_BTC = 1747725300  # 2025-05-20 07:15 UTC
AT_EUR = datetime(2026, 6, 10, 10, tzinfo=UTC).timestamp()


def bars(symbol: str, at: float, n: int = 320):
    c = real_candles(symbol)
    return c[c["time"] < at][-n:]


def trade_alert(candles, kind: str, breakeven: bool = False, exit_price: float | None = None) -> Alert:
    entry = float(candles["close"][-20])
    risk = float(candles["high"][-40:].max() - candles["low"][-40:].min()) * 0.3
    trade = ActiveTrade(ticket=9, symbol="BTCUSDc", strategy="bb_fade", direction=Direction.LONG, entry_price=entry,
                        sl=entry if breakeven else entry - risk, tp=entry + 1.5 * risk, initial_sl=entry - risk,
                        volume=0.01, entry_time=float(candles["time"][-20]))
    return Alert(kind=kind, severity="high", title=f"BTCUSDc: {kind}", text=kind, symbol="BTCUSDc", ticket=9,
                 created_at=float(candles["time"][-1]), trade=trade,
                 range_data=analysis_from(candles, "BTCUSDc").range,
                 exit_price=None if exit_price is None else entry + exit_price * risk)


def time_it(fn) -> tuple[list[float], int]:
    size = len(fn())  # warm-up (imports, font cache)
    ms = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000)
    return ms, size


def main() -> None:
    xau, btc, eur = bars("XAUUSDc", XAU_TRADEABLE_AT), bars("BTCUSDc", AT_BTC), bars("EURUSDc", AT_EUR)
    report = run_backtest(load_config(), "EURUSDc", days=3)
    cases = {
        "/scalp XAUUSDc tradeable": lambda: render_analysis_chart(xau, analysis_from(xau), 2),
        "/scalp BTCUSDc no trade": lambda: render_analysis_chart(btc, analysis_from(btc, "BTCUSDc", False), 2),
        "/scalp EURUSDc 5 digits": lambda: render_analysis_chart(eur, analysis_from(eur, "EURUSDc", False), 5),
        "alert exit (BTCUSDc)": lambda: render_alert_chart(btc[-120:], trade_alert(btc, "exit", exit_price=1.5), 2),
        "alert breakeven (BTCUSDc)": lambda: render_alert_chart(btc[-120:], trade_alert(btc, "be", True), 2),
        f"backtest equity ({report.metrics.trades} trades)": lambda: equity_png(report),
    }
    print(f"{'chart':34s} {'p50 ms':>8s} {'max ms':>8s} {'PNG KB':>8s}")
    for name, fn in cases.items():
        ms, size = time_it(fn)
        print(f"{name:34s} {statistics.median(ms):8.1f} {max(ms):8.1f} {size / 1024:8.1f}")


if __name__ == "__main__":
    main()
