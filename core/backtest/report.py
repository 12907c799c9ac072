"""Backtest outputs: trades (CSV + JSON), metrics (JSON + table), signals, and the equity/drawdown PNG.

Files are what a trader keeps and diffs between runs, so they are plain formats with stable columns.
The equity/drawdown PNG is drawn in `core.backtest.equity_chart`.
"""
from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from core.backtest.equity_chart import equity_png
from core.backtest.signals import Signal, write_signals
from core.brokers.base import AccountInfo
from core.domain.models import ClosedTrade
from core.store.metrics import MetricsBlock, MetricsReport, block_rows, net_pnl, r_count_note


class BacktestReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str
    timeframe: str
    bars: int
    start: float
    end: float
    strategy_mode: str
    config_version: str
    costs: dict[str, float | str] = Field(default_factory=dict)
    starting_balance: float
    final_balance: float
    currency: str = Field(default=AccountInfo.model_fields["currency"].default,
                          description="money figures are in this currency: the paper account's")
    metrics: MetricsReport
    trades: list[ClosedTrade] = Field(default_factory=list)
    signals: list[Signal] = Field(default_factory=list)
    seconds: float = 0.0
    analysis_calls: int = 0
    analysis_seconds: float = 0.0
    prescreened: int = Field(default=0, description="flat bars skipped: the pre-screen proved the analysis would say no")
    session_gated: int = Field(default=0, description="flat bars skipped: the analysis' own session filter blocks")
    screen_seconds: float = Field(default=0.0, description="time spent building and consulting the pre-screens")
    open_at_end: int = Field(default=0, description="trades the end-of-run close could not close (market closed)")
    files: dict[str, str] = Field(default_factory=dict)

    @property
    def bars_per_second(self) -> float:
        return self.bars / self.seconds if self.seconds > 0 else 0.0


TRADE_FIELDS = [
    "ticket", "symbol", "strategy", "direction", "volume", "entry_time", "entry_price", "exit_time",
    "exit_price", "initial_sl", "tp", "pnl", "commission", "net_pnl", "r_multiple", "planned_rr", "mfe_r",
    "mae_r", "exit_reason", "session",
]


def _iso(t: float | None) -> str:
    return "" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


def write_trades(trades: list[ClosedTrade], directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    jpath = directory / "trades.json"
    jpath.write_text(json.dumps([t.to_dict() for t in trades], indent=1))
    cpath = directory / "trades.csv"
    with cpath.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=TRADE_FIELDS + ["entry_utc", "exit_utc"])
        w.writeheader()
        for t in trades:
            row = {k: v for k, v in t.to_dict().items() if k in TRADE_FIELDS}
            row["net_pnl"] = net_pnl(t)
            row["entry_utc"] = _iso(t.entry_time)
            row["exit_utc"] = _iso(t.exit_time)
            w.writerow(row)
    return jpath, cpath


MIN_TRADES = 20  # below this a group's figures are printed as "too few trades", not as if they meant something


def _group_value(b: MetricsBlock) -> str:
    exp = "-" if b.expectancy_r is None else f"{b.expectancy_r:+.3f} R{r_count_note(b)}"
    text = f"{b.net_pnl:+.2f} / {exp}"
    return f"too few trades ({text})" if b.trades < MIN_TRADES else text


def _money(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def metrics_table(report: BacktestReport):
    """A rich Table of the overall figures with the trade count beside each one.

    The title gives the period and the currency; the two "avg risk" rows say why money and R can disagree
    (at a fixed lot a wider stop risks more money for the same 1 R), and groups under MIN_TRADES trades
    say "too few trades" instead of passing for evidence."""
    from rich.table import Table

    m = report.metrics
    period = f"{_iso(report.start)} → {_iso(report.end)} UTC" if report.end > report.start else "empty period"
    t = Table(title=f"{report.symbol} backtest {period}: {report.bars} bars, {m.trades} trades, money in {report.currency}",
              caption="R = result / initial risk; at a fixed lot a wider stop risks more money for the same R"
              + (f"; fewer than {MIN_TRADES} trades: too few trades to judge" if m.trades < MIN_TRADES else ""))
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("n", justify="right")
    for label, value, n in block_rows(m.overall):
        t.add_row(label, value, str(n))
    o = m.overall
    t.add_row(f"avg risk {report.currency} (winners)", _money(o.avg_risk_money_win), str(o.wins))
    t.add_row(f"avg risk {report.currency} (losers)", _money(o.avg_risk_money_loss), str(o.losses))
    for title, ci in (("expectancy R CI", m.expectancy_r_ci), ("expectancy money CI", m.expectancy_money_ci)):
        if ci is not None and ci.low is not None:
            t.add_row(f"{title} {int(100 * ci.confidence)}%", f"[{ci.low:+.3f}, {ci.high:+.3f}]", str(ci.trades))
    for name, groups in (("strategy", m.by_strategy), ("session", m.by_session)):
        for key, b in groups.items():
            t.add_row(f"{name} {key}", _group_value(b), str(b.trades))
    for label, b in (("in-sample", m.in_sample), ("out-of-sample", m.out_of_sample)):
        if b is not None:
            t.add_row(label, _group_value(b), str(b.trades))
    return t


def write_report(report: BacktestReport, directory: str | Path) -> dict[str, str]:
    """Write every output file; returns {kind: path} and records it on the report."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tj, tc = write_trades(report.trades, d)
    sj, sc = write_signals(report.signals, d)
    mpath = d / "metrics.json"
    mpath.write_text(report.metrics.model_dump_json(indent=1))
    png = d / "equity.png"
    png.write_bytes(equity_png(report))
    files = {"trades_json": str(tj), "trades_csv": str(tc), "signals_json": str(sj), "signals_csv": str(sc),
             "metrics_json": str(mpath), "equity_png": str(png)}
    report.files = files
    summary = report.model_dump(mode="json", exclude={"trades", "signals", "metrics"})
    summary["bars_per_second"] = report.bars_per_second
    (d / "summary.json").write_text(json.dumps(summary, indent=1))
    files["summary_json"] = str(d / "summary.json")
    return files
