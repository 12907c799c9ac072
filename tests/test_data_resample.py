"""Resampling on real data: against pandas, against the broker's own higher-timeframe exports."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.config.paths import market_data_dir
from core.data.candles import CANDLE_DTYPE, from_columns
from core.data.loaders import load_candles
from core.data.resample import infer_step, resample

MARKET = market_data_dir()
NAUTILUS = MARKET / "nautechsystems__nautilus_trader/tests/test_data/btc-perp-20211231-20220201_1m.csv"
EURUSD_M1 = MARKET / "hadiforoughi__EURUSD_dataset/EURUSD_M1.csv"
XAU = MARKET / "budimanlai__forex-tick/data"


def _pandas_resample(arr: np.ndarray, rule: str) -> pd.DataFrame:
    df = pd.DataFrame({f: arr[f] for f in CANDLE_DTYPE.names if f != "time"},
                      index=pd.to_datetime(arr["time"], unit="s"))
    agg = df.resample(rule, label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last",
         "tick_volume": "sum", "real_volume": "sum", "spread": "min"}
    )
    counts = df["open"].resample(rule).count()
    return agg[counts > 0]  # pandas makes empty buckets; we must not


@pytest.mark.parametrize("path, tf, rule", [
    (NAUTILUS, "M5", "5min"), (NAUTILUS, "M15", "15min"), (NAUTILUS, "H1", "1h"), (NAUTILUS, "D1", "1D"),
    (EURUSD_M1, "M5", "5min"), (EURUSD_M1, "H1", "1h"), (EURUSD_M1, "H4", "4h"),
])
def test_matches_pandas_resample_on_real_data(path, tf, rule):
    arr = load_candles(path)
    got = resample(arr, tf)
    ref = _pandas_resample(arr, rule)
    assert len(got) == len(ref)
    np.testing.assert_array_equal(got["time"], ref.index.to_numpy().astype("datetime64[s]").astype(np.int64))
    for f in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(got[f], ref[f].to_numpy(), err_msg=f)
    for f in ("tick_volume", "real_volume", "spread"):
        np.testing.assert_array_equal(got[f].astype(np.int64), ref[f].to_numpy().astype(np.int64), err_msg=f)
    assert got["tick_volume"].sum() == arr["tick_volume"].sum()


@pytest.mark.parametrize("tf, fname", [("M15", "XAUUSD_M15.csv"), ("H1", "XAUUSD_H1.csv")])
def test_equals_the_brokers_own_export(tf, fname):
    """M5 -> M15/H1 must reproduce the MT5 terminal's own bars exactly, spread included (min)."""
    m5 = load_candles(XAU / "XAUUSD_M5.csv", tz_offset_hours=2)
    broker = load_candles(XAU / fname, tz_offset_hours=2)
    got = resample(m5, tf)
    assert len(got) == len(broker)
    for f in CANDLE_DTYPE.names:
        np.testing.assert_array_equal(got[f], broker[f], err_msg=f)


def test_weekends_and_gaps_produce_no_bars():
    arr = load_candles(EURUSD_M1)
    h1 = resample(arr, "H1")
    dow = ((h1["time"] // 86400) + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)
    assert not np.any(dow == 5), "no Saturday bars from an FX feed"
    gaps = np.diff(h1["time"])
    assert gaps.max() >= 48 * 3600, "the weekend stays a gap, no synthetic flat bars"
    assert np.all(h1["time"] % 3600 == 0)
    # every output bucket holds at least one source bar
    buckets = np.unique(arr["time"] // 3600 * 3600)
    np.testing.assert_array_equal(h1["time"], buckets)


def test_drop_incomplete_trims_partial_head_and_tail():
    arr = load_candles(NAUTILUS)  # starts 23:01, so the first H1 bucket lacks its first minute
    full = resample(arr, "H1")
    done = resample(arr, "H1", drop_incomplete=True)
    assert full["time"][0] == arr["time"][0] - 60
    assert done["time"][0] == full["time"][1]
    last_end = full["time"][-1] + 3600
    tail_closed = arr["time"][-1] + 60 >= last_end
    assert len(done) == len(full) - 1 - (0 if tail_closed else 1)
    # cut the data mid-hour: that hour is incomplete unless `now` says it has closed
    cut = arr[arr["time"] < full["time"][10] + 1800]
    assert resample(cut, "H1", drop_incomplete=True)["time"][-1] == full["time"][9]
    later = resample(cut, "H1", drop_incomplete=True, now=float(full["time"][10] + 3600))
    assert later["time"][-1] == full["time"][10]


def test_interior_bucket_with_missing_minutes_is_still_complete():
    t = np.array([0, 60, 180, 300, 360, 420, 480, 540]) + 1_700_000_100  # 5-min aligned start
    c = from_columns(t, np.ones(8), np.full(8, 2.0), np.full(8, 0.5), np.ones(8), tick_volume=np.arange(8))
    out = resample(c, "M5", drop_incomplete=True, source_seconds=60)
    assert list(out["time"]) == [1_700_000_100, 1_700_000_400]
    assert list(out["tick_volume"]) == [0 + 1 + 2, 3 + 4 + 5 + 6 + 7]
    # without the 4th minute of the last bucket, that bucket may still be forming: dropped
    out = resample(c[:-1], "M5", drop_incomplete=True, source_seconds=60)
    assert list(out["time"]) == [1_700_000_100]


def test_refuses_to_go_finer_or_non_multiple():
    arr = load_candles(XAU / "XAUUSD_M15.csv")
    with pytest.raises(ValueError, match="whole multiple"):
        resample(arr, "M5")
    assert infer_step(arr) == 900
    with pytest.raises(TypeError):
        resample(np.zeros(3), "H1")
    assert len(resample(arr[:0], "H1")) == 0
