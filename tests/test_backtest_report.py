"""Backtest outputs and the entry points (run_backtest, `moneybot backtest`) on real data."""
from __future__ import annotations

import csv
import json

import pytest

from bot.cli import main as cli_main
from core.backtest.api import load_series, parse_when, run_backtest
from core.backtest.equity_chart import equity_png
from core.config.loading import load_config
from core.config.paths import market_data_dir
from core.domain.exceptions import UserFacingError
from core.store.metrics import compute_metrics
from tests.backtest_probe import edge_fade

XAU = market_data_dir() / "budimanlai__forex-tick" / "data" / "XAUUSD_M5.csv"
BTC_1M = market_data_dir() / "nautechsystems__nautilus_trader" / "tests" / "test_data" / "btc-perp-20211231-20220201_1m.csv"


@pytest.fixture(scope="module")
def cfg():
    return load_config()


@pytest.fixture(scope="module")
def report(cfg, tmp_path_factory):
    out = tmp_path_factory.mktemp("bt")
    calls = []
    rep = run_backtest(cfg, "xauusdc", data=str(XAU), end="2025-01-20", out_dir=out, analyse_fn=edge_fade,
                       progress=lambda done, total: calls.append((done, total)))
    return rep, out, calls


def test_files_written_and_consistent(report):
    rep, out, calls = report
    assert rep.symbol == "XAUUSDc" and len(rep.trades) >= 10
    names = {p.name for p in out.iterdir()}
    assert {"trades.csv", "trades.json", "signals.csv", "signals.json", "metrics.json", "equity.png",
            "summary.json"} <= names
    rows = list(csv.DictReader((out / "trades.csv").open()))
    assert [int(r["ticket"]) for r in rows] == [t.ticket for t in rep.trades]
    assert json.loads((out / "metrics.json").read_text())["trades"] == len(rep.trades)
    # metrics come from core.store.metrics on the journalled trades, the same call /metrics makes
    again = compute_metrics(rep.trades, starting_balance=rep.starting_balance)
    assert again.overall == rep.metrics.overall
    assert rep.final_balance == pytest.approx(rep.starting_balance + rep.metrics.overall.net_pnl)
    png = (out / "equity.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert calls[-1][0] == calls[-1][1] and len(calls) <= 220
    # costs are on and stated
    assert rep.costs["slippage_points"] > 0 and "from data" in str(rep.costs["spread"])
    # every journalled trade has a session label for the per-session breakdown
    assert all(t.session for t in rep.trades) and rep.metrics.by_session


def test_decisions_stay_within_the_requested_period(report):
    rep, _, _ = report
    end = parse_when("2025-01-20")
    assert all(s.decision_time <= end + 300 for s in rep.signals)


def test_equity_png_of_an_empty_run(cfg):
    rep = run_backtest(cfg, "XAUUSDc", data=str(XAU), end="2025-01-06", analyse_fn=lambda *a: _flat(*a))
    assert rep.trades == [] and equity_png(rep)[:4] == b"\x89PNG"


def _flat(symbol, broker, cfg, clock):
    from core.domain.models import AnalysisResult

    return AnalysisResult(symbol=symbol, timeframe="M5", as_of=clock.now())


def test_one_minute_bars_are_resampled_to_m5(cfg):
    c = load_series(cfg, "BTCUSDc", str(BTC_1M), tz_offset_hours=0)
    assert len(c) > 8000 and set((c["time"] % 300).tolist()) == {0}


@pytest.mark.parametrize("kwargs, text", [
    ({"symbol": "NOPE"}, "don't know the symbol"),
    ({"symbol": "XAUUSDc", "strategy": "martingale"}, "unknown strategy"),
    ({"symbol": "XAUUSDc", "start": "yesterday"}, "is not a date"),
    ({"symbol": "XAUUSDc", "days": -1}, "positive"),
    ({"symbol": "XAUUSDc", "data": "/nonexistent/file.csv"}, "file.csv"),
    ({"symbol": "XAUUSDc", "start": "2030-01-01"}, "ends before"),
])
def test_bad_input_is_one_clear_error(cfg, kwargs, text):
    sym = kwargs.pop("symbol")
    with pytest.raises(UserFacingError) as e:
        run_backtest(cfg, sym, analyse_fn=edge_fade, **({"data": str(XAU)} | kwargs))
    assert text in e.value.message


def test_cli_prints_table_and_writes_files(tmp_path, capsys, monkeypatch):
    import core.backtest.live as live

    monkeypatch.setattr(live.LiveParts, "analyse", lambda self, now: edge_fade(self.symbol, self.broker, self.cfg,
                                                                               self.clock))
    rc = cli_main(["backtest", "XAUUSDc", "--data", str(XAU), "--to", "2025-01-10", "--out", str(tmp_path),
                   "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "expectancy R" in out and "bars/s" in out
    assert (tmp_path / "XAUUSDc" / "equity.png").exists()


def test_cli_bad_symbol_exit_code_2(capsys):
    assert cli_main(["backtest", "DOGE", "--no-progress"]) == 2
    assert "don't know the symbol" in capsys.readouterr().err
