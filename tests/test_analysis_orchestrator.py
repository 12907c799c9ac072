"""The orchestrator end to end: serialisable results, stage timings, feed adapters, the CLI, trader wording."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from analysis_helpers import SYMBOLS, app, app_with, bar_close, candles, market, run, ts

from bot.cli import main
from bot.cli_analyse import run_analysis
from core.analysis.facade import analyse_range_scalp_opportunity, time_operation
from core.brokers.base import Tick
from core.config.paths import market_data_dir
from core.domain.clock import FixedClock
from core.domain.models import AnalysisResult
from core.domain.timeframes import Timeframe


def test_result_round_trips_and_carries_versions_and_timestamps():
    r = run_analysis(app(), "xauusdc", at=ts("2025-06-03T10:00"), market=market())
    assert r.symbol == "XAUUSDc" and r.config_version == app().short_version
    assert AnalysisResult.from_json(r.to_json()) == r
    assert r.as_of == ts("2025-06-03T10:05") and r.data_timestamps["now"] == r.as_of
    assert r.data_timestamps["candles_M5"] == r.as_of and r.data_timestamps["candles_H1"] <= r.as_of
    assert set(r.timings_ms) >= {"analysis.total", "analysis.prepare", "analysis.range_detection",
                                 "analysis.filters", "analysis.scoring"}
    assert r.session == "london"
    names = [f.name for f in r.filters]
    assert names[:5] == ["data_quality", "session", "news", "activity", "range_validity"]


def test_slow_stages_log_a_warning(caplog):
    cfg = app_with({"performance": {"slow_operation_ms": 1e-6}})
    with caplog.at_level(logging.WARNING, logger="core.analysis.facade"):
        run("EURUSDc", bar_close("EURUSDc", 5000), cfg)
    slow = [r.getMessage() for r in caplog.records if "slow operation" in r.getMessage()]
    assert any("analysis.range_detection" in m for m in slow)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="core.analysis.facade"):
        run("EURUSDc", bar_close("EURUSDc", 5000))
    assert not [r for r in caplog.records if "slow operation" in r.getMessage()]


def test_time_operation_as_decorator(caplog):
    sink = {}

    @time_operation("busy", threshold_ms=0.0, sink=sink)
    def busy():
        return sum(range(1000))

    with caplog.at_level(logging.WARNING, logger="core.analysis.facade"):
        assert busy() == 499500
    assert sink["busy"] > 0 and "slow operation: busy" in caplog.text


class _HistoryBroker:
    """A broker-shaped feed over the real history (what PaperBroker/MT5 expose to the analysis)."""

    def __init__(self, symbol, clock):
        self.symbol, self.clock = symbol, clock

    def now(self):
        return self.clock.now()

    def candles(self, symbol, timeframe, count):
        tf = Timeframe.parse(timeframe)
        arr = candles(symbol)[tf.value]
        end = int(np.searchsorted(arr["time"], self.clock.now() - tf.seconds, side="right"))
        return arr[max(0, end - count):end]

    def tick(self, symbol):
        c = float(candles(symbol)["M5"]["close"][np.searchsorted(candles(symbol)["M5"]["time"], self.clock.now()) - 1])
        return Tick(time=self.clock.now(), bid=c - 0.1, ask=c + 0.1)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_broker_feed_path_matches_the_historical_path(symbol):
    now = bar_close(symbol, 4000)
    clock = FixedClock(now)
    live = analyse_range_scalp_opportunity(symbol, _HistoryBroker(symbol, clock), app(), clock=clock)
    assert analyse_range_scalp_opportunity(symbol, cfg=app(), broker=_HistoryBroker(symbol, clock), clock=clock) \
        .model_copy(update={"timings_ms": {}}) == live.model_copy(update={"timings_ms": {}})
    hist = analyse_range_scalp_opportunity(symbol, market(), app(), at=now - 300)
    assert live.range == hist.range and live.no_range == hist.no_range
    assert live.data_timestamps["tick"] == now
    assert [f.name for f in live.filters] == [f.name for f in hist.filters]
    # the quote moves entries by the half spread, nothing else
    for a, b in zip(live.strategies, hist.strategies, strict=False):
        if a.strategy == b.strategy:
            assert abs(a.entry - b.entry) == pytest.approx(0.1)


def test_paper_broker_feed_runs_through_the_same_code():
    from core.brokers.paper.broker import PaperBroker
    from core.brokers.paper.feed import ReplayFeed

    sym = "BTCUSDc"
    clock = FixedClock(bar_close(sym, 6000))
    feed = ReplayFeed({sym: {Timeframe.M5: candles(sym)["M5"]}})
    broker = PaperBroker({sym: app().symbols[sym]}, feed, db_path=":memory:", clock=clock)
    broker.connect()
    try:
        r = analyse_range_scalp_opportunity(sym, broker, app(), clock=clock)
    finally:
        broker.close()
    assert r.as_of == clock.now() and "candles_H1" in r.data_timestamps
    assert r.range is not None or r.no_range is not None


def test_unknown_symbol_is_a_user_error():
    from core.domain.exceptions import UnknownSymbolError

    with pytest.raises(UnknownSymbolError, match="Did you mean"):
        analyse_range_scalp_opportunity("XAUUSD", market(), app())


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_every_rejection_reads_as_a_sentence(symbol):
    n = len(candles(symbol)["M5"])
    seen = 0
    for i in np.linspace(300, n - 1, 60).astype(int):
        r = run(symbol, bar_close(symbol, int(i)))
        texts = [f.reason for f in r.failures] + ([r.no_range.message] if r.no_range else [])
        for t in texts:
            seen += 1
            assert t[0].isupper() and t.rstrip().endswith("."), t
            assert "_" not in t, f"code word in a trader message: {t}"
            assert "nan" not in t.lower().split(), t
    assert seen > 20


# -- CLI --------------------------------------------------------------------------------------------
def test_cli_json_equals_the_library_result(capsys):
    assert main(["analyse", "EURUSDc", "--at", "2026-06-10T09:30", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    lib = run_analysis(app(), "EURUSDc", at=ts("2026-06-10T09:30"), market=market()).to_dict()
    out.pop("timings_ms"), lib.pop("timings_ms")
    assert out == lib


def test_cli_table_output(capsys):
    assert main(["analyse", "XAUUSDc", "--at", "1748944800"]) == 0
    out = capsys.readouterr().out
    assert "XAUUSDc M5 as of 2025-06-03 10:05 UTC" in out and "Checks" in out and "range_validity" in out


@pytest.mark.parametrize("argv,needle", [
    (["analyse", "GOLD"], "I don't know the symbol 'GOLD'"),
    (["analyse", "XAUUSDc", "--data", "/no/such/file.csv"], "file not found"),
    (["analyse", "EURUSDc", "--at", "2020-01-01T00:00"], "is outside the data"),
    (["analyse", "EURUSDc", "--at", "next tuesday"], "I can't read the time"),
])
def test_cli_bad_input_is_one_line_and_exit_2(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_cli_data_file_is_resampled_to_the_analysis_timeframe(capsys):
    m1 = market_data_dir() / "mahmer2011__trading_bot" / "data" / "BTCUSD_M1.csv"
    assert main(["analyse", "BTCUSDc", "--data", str(m1), "--at", "2025-06-02T10:00", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["timeframe"] == "M5" and out["as_of"] == ts("2025-06-02T10:05")
    h1 = market_data_dir() / "budimanlai__forex-tick" / "data" / "XAUUSD_H1.csv"
    assert main(["analyse", "XAUUSDc", "--data", str(h1)]) == 2
    assert "needs M5 bars or finer" in capsys.readouterr().err


def test_concurrent_calls_give_the_sequential_answers():
    """The service runs analyses in worker threads; the shared memos must not mix results up."""
    from concurrent.futures import ThreadPoolExecutor

    from core.analysis.range import detector

    jobs = [(s, bar_close(s, i)) for s in SYMBOLS for i in range(3000, 3060, 3)]

    def one(job):
        return run(*job).model_copy(update={"timings_ms": {}})

    detector._NESTED.clear()
    detector._EXPANSION.clear()
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(one, jobs))
    detector._NESTED.clear()
    detector._EXPANSION.clear()
    assert threaded == [one(j) for j in jobs]
