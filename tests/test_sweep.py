"""Walk-forward sweeps: grid validation, the fold split, a tiny grid on real data under a LocalCluster,
resume, and the sweep's best in-sample backtest against a direct `moneybot backtest` trade for trade."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from core.backtest.api import load_series
from core.backtest.sweep.folds import walk_forward
from core.backtest.sweep.grid import apply_params, check_grid, check_params, parse_grid, parse_set
from core.backtest.sweep.runner import LOG_NAME, run_sweep
from core.backtest.sweep.summary import best_of, verdict
from core.config.loading import load_config
from core.config.paths import market_data_dir
from core.domain.exceptions import UserFacingError
from core.store.metrics import BootstrapCI

EUR = market_data_dir() / "01Javier__trading-eurusd" / "data" / "EURUSD_M5.csv"
SYM = "EURUSDc"


@pytest.fixture(scope="module")
def cfg():
    return load_config()


# ---- grid validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, words", [
    ({"params": {"exits.breakeven_trigger": [1.0]}}, "did you mean 'exits.breakeven_trigger_r'"),
    ({"params": {"nosuch.x": [1]}}, "unknown grid key 'nosuch.x'"),
    ({"params": {"exits": [1]}}, "is a whole section"),
    ({"params": {"exits.breakeven_trigger_r": []}}, "empty list"),
    ({"params": {"exits.breakeven_trigger_r": {"start": 2, "stop": 1, "step": 0.5}}}, "empty range"),
    ({"params": {"exits.breakeven_trigger_r": {"start": 1, "stop": 2, "step": 0}}}, "greater than 0"),
    ({"params": {}}, "at least 1"),
    ({"params": {"exits.breakeven_trigger_r": [1]}, "nonsense": 1}, "nonsense"),
    ({"params": {"exits.breakeven_trigger_r": [-1.0]}}, "not accepted by the config"),
])
def test_bad_grids_give_one_clear_line(cfg, raw, words):
    with pytest.raises(UserFacingError) as e:
        check_grid(cfg, SYM, parse_grid(raw))
    assert words in str(e.value)
    assert "\n" not in str(e.value)


def test_grid_values_and_combinations(cfg):
    g = parse_grid({"params": {"exits.breakeven_trigger_r": {"start": 0.5, "stop": 1.5, "step": 0.5},
                               "range_detection.min_touches_per_side": [2, 3]}})
    assert g.values()["exits.breakeven_trigger_r"] == [0.5, 1.0, 1.5]
    combos = check_grid(cfg, SYM, g)
    assert len(combos) == 6 and combos[0] == {"exits.breakeven_trigger_r": 0.5, "range_detection.min_touches_per_side": 2}


def test_apply_params_changes_only_the_symbol_setting(cfg):
    out = apply_params(cfg, SYM, {"exits.breakeven_trigger_r": 1.7})
    assert out.for_symbol(SYM).exits.breakeven_trigger_r == 1.7
    assert out.for_symbol("XAUUSDc").exits.breakeven_trigger_r == cfg.for_symbol("XAUUSDc").exits.breakeven_trigger_r
    assert apply_params(cfg, SYM, {}) is cfg
    assert check_params(cfg, SYM, parse_set(["exits.breakeven_trigger_r=1.7"])).version == out.version
    with pytest.raises(UserFacingError, match="--set key"):
        check_params(cfg, SYM, parse_set(["exits.nope=1"]))


# ---- folds ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, first, k", [(1000, 100, 1), (11865, 132, 4), (5000, 0, 7), (777, 33, 3)])
def test_no_out_of_sample_bar_is_in_its_own_in_sample(n, first, k):
    folds = walk_forward(n, first, k)
    assert len(folds) == k
    for f in folds:
        assert first <= f.is_lo < f.is_hi <= f.oos_lo < f.oos_hi <= n
        assert not set(range(f.is_lo, f.is_hi)) & set(range(f.oos_lo, f.oos_hi))
    assert [f.is_lo for f in folds] == sorted(f.is_lo for f in folds)  # time order


def test_too_few_bars_for_the_folds():
    with pytest.raises(UserFacingError, match="too few for 5 folds"):
        walk_forward(200, 0, 5)


def test_best_needs_min_trades_and_verdict_words():
    rows = [{"combo": 0, "trades": 3, "expectancy_r": 2.0}, {"combo": 1, "trades": 30, "expectancy_r": 0.1},
            {"combo": 2, "trades": 40, "expectancy_r": None}]
    assert best_of(rows, "expectancy_r", 20)["combo"] == 1
    assert best_of(rows, "expectancy_r", 50) is None
    spans = BootstrapCI(trades=40, resamples=10, confidence=0.95, seed=1, mean=0.1, low=-0.2, high=0.3)
    assert verdict(spans, 20).startswith("no evidence of an edge")
    few = BootstrapCI(trades=5, resamples=10, confidence=0.95, seed=1, mean=0.1, low=-0.2, high=0.3)
    assert "too few trades" in verdict(few, 20)


# ---- a tiny grid on real data under a LocalCluster ---------------------------------------------------
@pytest.fixture(scope="module")
def tiny(cfg, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    candles = load_series(cfg, SYM, EUR)
    grid = parse_grid({"params": {"exits.breakeven_trigger_r": [0.8, 1.5]}, "min_trades": 3})
    run = run_sweep(cfg, SYM, candles, grid, folds=2, workers=2, out_dir=out)
    return cfg, candles, grid, out, run


def test_tiny_grid_runs_on_a_local_cluster(tiny):
    cfg, candles, grid, out, run = tiny
    assert run.workers == 2
    # 2 folds x 2 points in-sample, then each fold's best out of sample; fold 0's out-of-sample block is
    # fold 1's in-sample block, where its params already ran: that one is taken, not run again
    assert len(run.rows) == 2 * 2 + 2 and run.ran == 5 and run.reused == run.twins == 1
    oos0 = next(r for r in run.rows if r["phase"] == "oos" and r["fold"] == 0)
    twin = next(r for r in run.rows if r["phase"] == "is" and r["fold"] == 1 and r["params"] == oos0["params"])
    assert (oos0["lo"], oos0["hi"], oos0["tickets"]) == (twin["lo"], twin["hi"], twin["tickets"])
    assert sum(1 for _ in (out / LOG_NAME).open()) == run.ran
    s = run.summary
    assert len(s.folds) == 2 and all(f.params is not None for f in s.folds)
    assert s.oos_trades == sum(r["trades"] for r in run.rows if r["phase"] == "oos") > 0
    # the two params give different backtests (the override reaches the engine)
    fold0 = [r for r in run.rows if r["phase"] == "is" and r["fold"] == 0]
    assert fold0[0]["pnl"] != fold0[1]["pnl"]


def test_no_trade_of_an_in_sample_task_reaches_its_out_of_sample_part(tiny):
    cfg, candles, grid, out, run = tiny
    times = candles["time"]
    for r in run.rows:
        if r["phase"] != "is":
            continue
        oos = next(o for o in run.rows if o["phase"] == "oos" and o["fold"] == r["fold"])
        assert r["last_bar"] < oos["first_bar"]
        assert max(r["exit_times"], default=0.0) <= float(times[oos["first_bar"]])
        assert min(oos["entry_times"], default=np.inf) >= float(times[oos["first_bar"]])


def test_resume_never_reruns_a_finished_task(tiny):
    cfg, candles, grid, out, run = tiny
    again = run_sweep(cfg, SYM, candles, grid, folds=2, workers=1, out_dir=out, resume=True)
    assert again.ran == 0 and again.reused == len(run.rows) and again.workers == 0  # no cluster needed
    # a crash after 3 tasks (the 4th line half written): only the others run again
    lines = (out / LOG_NAME).read_text().splitlines()
    (out / LOG_NAME).write_text("\n".join(lines[:3]) + "\n" + lines[3][: len(lines[3]) // 2])
    resumed = run_sweep(cfg, SYM, candles, grid, folds=2, workers=1, out_dir=out, resume=True)
    assert resumed.reused == 3 + 1 and resumed.ran == run.ran - 3  # + 1: the out-of-sample twin
    assert resumed.twins == 1 and again.twins == 1
    from bot.cli_sweep import tasks_line

    assert tasks_line(run).startswith("6 tasks (5 run now, 1 the same backtest as an in-sample task) on 2 workers")
    assert tasks_line(resumed).startswith(f"6 tasks ({run.ran - 3} run now, 1 the same backtest as an in-sample "
                                          "task, 3 from the resume log) on ")
    assert resumed.summary.model_dump(exclude={"files"}) == run.summary.model_dump(exclude={"files"})
    keys = [json.loads(x)["key"] for x in (out / LOG_NAME).read_text().splitlines()[4:]]
    assert len(keys) == len(set(keys)) == run.ran - 3


def test_best_in_sample_equals_a_direct_backtest_trade_for_trade(tiny, tmp_path):
    from bot.cli import main

    cfg, candles, grid, out, run = tiny
    fold = run.summary.folds[0]
    best = next(r for r in run.rows if r["phase"] == "is" and r["fold"] == 0 and r["params"] == fold.params)
    times = candles["time"]
    sets = [x for k, v in best["params"].items() for x in ("--set", f"{k}={v}")]
    rc = main(["backtest", SYM, "--data", str(EUR), "--from", repr(float(times[best["lo"]])),
               "--to", repr(float(times[best["hi"] - 2])), "--out", str(tmp_path), "--no-progress", *sets])
    assert rc == 0
    with (tmp_path / SYM / "trades.csv").open() as fh:
        direct = list(csv.DictReader(fh))
    assert len(direct) == best["trades"] > 0
    assert [int(d["ticket"]) for d in direct] == best["tickets"]
    assert [float(d["exit_time"]) for d in direct] == best["exit_times"]
    assert [float(d["entry_time"]) for d in direct] == best["entry_times"]
    assert [round(float(d["net_pnl"]), 9) for d in direct] == [round(p, 9) for p in best["pnl"]]


def test_outputs_are_written(tiny, tmp_path):
    import pandas as pd

    from core.backtest.sweep.outputs import write_outputs

    cfg, candles, grid, out, run = tiny
    files = write_outputs(tmp_path, run.rows, run.summary, list(grid.params))
    frame = pd.read_parquet(files["results_parquet"])
    assert len(frame) == len(run.rows) and "exits.breakeven_trigger_r" in frame.columns
    assert len(pd.read_csv(files["results_csv"])) == len(run.rows)
    for k in ("heatmap_png", "oos_equity_png"):
        assert (tmp_path / f"{k[:-4]}.png").read_bytes()[:4] == b"\x89PNG"


def test_a_scheduler_without_workers_is_one_clear_line(cfg, tmp_path, monkeypatch):
    from dask.distributed import LocalCluster

    import core.backtest.sweep.runner as runner

    monkeypatch.setattr(runner, "WORKER_WAIT_SECONDS", 0.5)
    candles = load_series(cfg, SYM, EUR)
    grid = parse_grid({"params": {"exits.breakeven_trigger_r": [1.0]}, "min_trades": 3})
    with LocalCluster(n_workers=0, processes=True, host="127.0.0.1", dashboard_address=None) as cluster:
        with pytest.raises(UserFacingError, match="has no workers"):
            run_sweep(cfg, SYM, candles, grid, folds=2, scheduler=cluster.scheduler_address, out_dir=tmp_path)
