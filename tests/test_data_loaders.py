"""Candle loaders: every real file in ../shared/data/market loads, bad files fail with file + line."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from core.config.paths import market_data_dir
from core.data.candles import CANDLE_DTYPE
from core.data.loaders import clear_cache, detect_format, load_candles
from core.domain.exceptions import DataFileError, UserFacingError

MARKET = market_data_dir()

# row counts as documented in ../shared/data/market/README.md
README_ROWS = {
    "nautechsystems__nautilus_trader/tests/test_data/btc-perp-20211231-20220201_1m.csv": 45_031,
    "freqtrade__freqtrade/tests/testdata/orderflow/candles.json": 10_999,
    "mahmer2011__trading_bot/data/BTCUSD_M1.csv": 20_000,
    "mahmer2011__trading_bot/data/BTCUSD_M5.csv": 20_000,
    "mahmer2011__trading_bot/data/XAUUSD_M1.csv": 20_000,
    "mahmer2011__trading_bot/data/XAUUSD_M5.csv": 20_000,
    "budimanlai__forex-tick/data/XAUUSD_M5.csv": 58_230,
    "budimanlai__forex-tick/data/XAUUSD_M15.csv": 19_418,
    "budimanlai__forex-tick/data/XAUUSD_H1.csv": 4_858,
    "RayMacBart__Hedgehogger/data/EURUSD_M1_0-10k.csv": 9_999,
    "RayMacBart__Hedgehogger/data/EURUSD_M1_90-100k.csv": 9_999,
    "hadiforoughi__EURUSD_dataset/EURUSD_M1.csv": 49_993,
    "01Javier__trading-eurusd/data/EURUSD_M5.csv": 11_998,
    "01Javier__trading-eurusd/data/EURUSD_M15.csv": 11_998,
    "01Javier__trading-eurusd/data/EURUSD_H1.csv": 9_998,
    "jesiqueira__python_mt5/data/EURUSD_M1.csv": 500,
    "jesiqueira__python_mt5/data/EURUSD_M5.csv": 500,
}

TRADE_FILES = {"btcusdt-trades.parquet", "public_trades_list.csv"}


def _utc(text: str) -> int:
    return int(np.datetime64(text, "s").astype(np.int64))


def test_readme_lists_every_candle_file_on_disk():
    """If someone adds a candle file to the shared data, this test makes us support it."""
    on_disk = set()
    for p in MARKET.rglob("*"):
        if p.suffix in (".csv", ".json") and p.name not in TRADE_FILES:
            rel = p.relative_to(MARKET).as_posix()
            if "calendar" in rel.lower() or "FxCalendar" in rel:
                continue
            on_disk.add(rel)
    assert on_disk == set(README_ROWS)


@pytest.mark.parametrize("rel", sorted(README_ROWS))
def test_every_real_candle_file_loads_sane(rel):
    arr = load_candles(MARKET / rel)
    assert arr.dtype == CANDLE_DTYPE
    assert len(arr) == README_ROWS[rel]
    t = arr["time"]
    assert np.all(np.diff(t) > 0), "times strictly increasing (sorted, unique)"
    assert np.all(arr["high"] >= arr["low"])
    assert np.all((arr["open"] >= arr["low"]) & (arr["open"] <= arr["high"]))
    assert np.all((arr["close"] >= arr["low"]) & (arr["close"] <= arr["high"]))
    assert np.all(np.isfinite(arr["close"]))
    # plausible epoch seconds (2020..2027), not ms and not broker-local nonsense
    assert _utc("2020-01-01") < t[0] < t[-1] < _utc("2027-01-01")
    # the volume column was recognised
    assert arr["tick_volume"].sum() > 0
    assert not arr.flags.writeable


@pytest.mark.parametrize(
    "rel, first_time, first_row",
    [
        # MT5 "Export bars": <DATE> <TIME> + spread
        ("budimanlai__forex-tick/data/XAUUSD_M5.csv", "2025-01-02T01:00", (2624.81, 2625.07, 2624.25, 2625.00, 124, 43, 0)),
        ("mahmer2011__trading_bot/data/BTCUSD_M1.csv", "2025-05-21T18:46", (108762.68, 108826.27, 108740.79, 108740.79, 56, 0, 0)),
        ("01Javier__trading-eurusd/data/EURUSD_H1.csv", "2024-11-27T05:00", (1.04854, 1.04857, 1.04777, 1.04827, 1047, 0, 0)),
        # unnamed 7th column is the spread
        ("RayMacBart__Hedgehogger/data/EURUSD_M1_90-100k.csv", "2025-02-13T01:33", (1.03941, 1.03945, 1.03938, 1.03939, 69, 4, 0)),
        ("RayMacBart__Hedgehogger/data/EURUSD_M1_0-10k.csv", "2024-11-14T14:01", (1.05302, 1.05355, 1.05299, 1.05341, 1026, 0, 0)),
        # quoted lines, tab inside, CRLF
        ("hadiforoughi__EURUSD_dataset/EURUSD_M1.csv", "2022-01-04T18:00", (1.12834, 1.1284, 1.12834, 1.12838, 24, 0, 0)),
        # copy_rates frame with index column and epoch seconds
        ("jesiqueira__python_mt5/data/EURUSD_M1.csv", "2021-11-15T01:39", (1.14439, 1.14439, 1.14432, 1.14434, 20, 8, 0)),
        # exchange data: fractional traded volume goes to real_volume (and tick_volume as proxy)
        ("nautechsystems__nautilus_trader/tests/test_data/btc-perp-20211231-20220201_1m.csv", "2021-12-31T23:01",
         (46319.0, 46385.0, 46319.0, 46377.0, 2300414, 0, 2300414)),
        ("freqtrade__freqtrade/tests/testdata/orderflow/candles.json", "2023-01-02T16:45", None),
    ],
)
def test_first_rows_parse_exactly(rel, first_time, first_row):
    arr = load_candles(MARKET / rel)
    assert arr["time"][0] == _utc(first_time)
    if first_row is not None:
        got = tuple(arr[0])[1:]
        assert got[:4] == pytest.approx(first_row[:4], rel=0, abs=1e-12)
        assert got[4:] == first_row[4:]


def test_freqtrade_json_matches_pandas_read_json():
    import pandas as pd

    path = MARKET / "freqtrade__freqtrade/tests/testdata/orderflow/candles.json"
    df = pd.read_json(path)
    arr = load_candles(path)
    dates = pd.to_datetime(df["date"], unit="ms") if df["date"].dtype.kind != "M" else df["date"]
    assert str(dates.iloc[0]) == "2023-01-02 16:45:00"
    np.testing.assert_array_equal(arr["time"], dates.to_numpy().astype("datetime64[s]").astype(np.int64))
    np.testing.assert_array_equal(arr["close"], df["close"].to_numpy())
    np.testing.assert_array_equal(arr["real_volume"], np.rint(df["volume"].to_numpy()).astype(np.uint64))


def test_lost_decimal_point_cells_are_repaired():
    """RayMacBart writes 1.05800 as '1058' (line 145 of the 0-10k file); we restore 1.058."""
    arr = load_candles(MARKET / "RayMacBart__Hedgehogger/data/EURUSD_M1_0-10k.csv")
    i = int(np.searchsorted(arr["time"], _utc("2024-11-14T16:24")))
    assert arr["time"][i] == _utc("2024-11-14T16:24")
    assert arr["open"][i] == pytest.approx(1.058, abs=1e-12)
    assert arr["high"].max() < 1.1 and arr["low"].min() > 1.0
    # a one-tick bar where all four cells were broken ("1053" x4)
    j = int(np.searchsorted(arr["time"], _utc("2024-11-17T22:52")))
    assert tuple(arr[j])[1:5] == pytest.approx((1.053,) * 4)


def test_tz_offset_converts_server_time_to_utc():
    path = MARKET / "budimanlai__forex-tick/data/XAUUSD_H1.csv"
    server = load_candles(path)
    utc = load_candles(path, tz_offset_hours=2)
    np.testing.assert_array_equal(utc["time"], server["time"] - 7200)
    assert utc["time"][0] == _utc("2025-01-01T23:00")  # 2025.01.02 01:00 at UTC+2
    half = load_candles(path, tz_offset_hours=-5.5)
    np.testing.assert_array_equal(half["time"], server["time"] + 19800)
    np.testing.assert_array_equal(utc["close"], server["close"])


def test_cache_returns_same_array_until_file_changes(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("time,open,high,low,close,volume\n2024-01-01 00:00,1,2,0.5,1.5,10\n2024-01-01 00:01,1.5,2,1,1.2,5\n")
    a = load_candles(p)
    assert load_candles(p) is a
    assert load_candles(p, tz_offset_hours=1) is not a
    with pytest.raises(ValueError):
        a["close"][0] = 3.0  # shared, so read-only
    p.write_text(p.read_text().replace(",10\n", ",11\n"))  # same size: only the mtime tells
    os.utime(p, ns=(10**18, 10**18))
    b = load_candles(p)
    assert b is not a and list(b["tick_volume"]) == [11, 5]
    clear_cache()
    assert load_candles(p) is not b


# ---------- hand-made fixtures for formats and errors ----------

def _write(tmp_path: Path, text: str, name: str = "bars.csv", newline: str = "\n") -> Path:
    p = tmp_path / name
    p.write_bytes(text.replace("\n", newline).encode())
    return p


GOOD = "time,open,high,low,close,volume\n2024-03-01 10:00:00,1.10,1.12,1.09,1.11,10\n2024-03-01 10:01:00,1.11,1.13,1.10,1.12,12\n"


def test_mt5_export_with_crlf_and_hh_mm(tmp_path):
    text = ("<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
            "2024.03.01\t10:00:00\t1.1\t1.2\t1.0\t1.15\t5\t0\t12\n"
            "2024.03.01\t10:05:00\t1.15\t1.25\t1.1\t1.2\t7\t3\t9\n")
    p = _write(tmp_path, text, newline="\r\n")
    assert detect_format(p.read_bytes()) == "mt5_export"
    arr = load_candles(p, tz_offset_hours=3)
    assert list(arr["time"]) == [_utc("2024-03-01T07:00"), _utc("2024-03-01T07:05")]
    assert list(arr["spread"]) == [12, 9] and list(arr["real_volume"]) == [0, 3] and list(arr["tick_volume"]) == [5, 7]


def test_semicolon_csv_and_epoch_ms_and_json_rows(tmp_path):
    p = _write(tmp_path, "Time;Open;High;Low;Close;Volume\n1709287200000;1;2;0.5;1.5;3\n1709287260000;1.5;2;1;1;4\n")
    arr = load_candles(p)
    assert list(arr["time"]) == [1709287200, 1709287260]
    rows = [[1709287200000, 1, 2, 0.5, 1.5, 3.25], [1709287260000, 1.5, 2, 1, 1, 4.0]]
    j = tmp_path / "rows.json"
    j.write_text(json.dumps(rows))
    arr = load_candles(j)
    assert list(arr["time"]) == [1709287200, 1709287260]
    assert list(arr["real_volume"]) == [3, 4]


def test_blank_lines_do_not_shift_line_numbers(tmp_path):
    p = _write(tmp_path, GOOD + "\n2024-03-01 10:02:00,1.12,1.13,1.14,1.12,3\n")
    with pytest.raises(DataFileError) as e:
        load_candles(p)
    assert e.value.line == 5  # header=1, two rows, blank line 4, bad row 5


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("time,open,high,close,volume\n2024-03-01 10:00,1,2,1.5,3\n", 1, ["missing column", "low"]),
        ("when,open,high,low,close\n2024-03-01 10:00,1,2,0.5,1.5\n", 1, ["missing column", "time"]),
        (GOOD + "2024-03-01 10:00:30,1.1,1.2,1.0,1.1,4\n", 4, ["backwards"]),
        (GOOD + "2024-03-01 10:01:00,1.1,1.2,1.0,1.1,4\n", 4, ["duplicate time"]),
        (GOOD + "2024-03-01 10:02:00,1.1,,1.0,1.1,4\n", 4, ["missing value", "high"]),
        (GOOD + "2024-03-01 10:02:00,1.1,abc,1.0,1.1,4\n", 4, ["non-numeric", "abc"]),
        (GOOD + "2024-03-01 10:02:00,1.1,nan,1.0,1.1,4\n", 4, ["high"]),
        (GOOD + "2024-03-01 10:02:00,1.1,1.0,1.2,1.1,4\n", 4, ["high 1.0 is below low 1.2"]),
        (GOOD + "2024-03-01 10:02:00,1.3,1.2,1.0,1.1,4\n", 4, ["open 1.3 is outside"]),
        (GOOD + "2024-03-01 10:02:00,1.1,1.2,1.0,0.9,4\n", 4, ["close 0.9 is outside"]),
        (GOOD + "yesterday,1.1,1.2,1.0,1.1,4\n", 4, ["cannot parse time", "yesterday"]),
        (GOOD + "2024-03-01 10:02:00,1.1,1.2,1.0,1.1,4,99,100\n", 4, ["cannot parse"]),
        (GOOD + "2024-03-01 10:02:00,1.1,1.2,1.0,1.1,-4\n", 4, ["negative"]),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, text, line, words):
    p = _write(tmp_path, text)
    with pytest.raises(DataFileError) as e:
        load_candles(p)
    err = e.value
    assert isinstance(err, UserFacingError)
    assert err.line == line
    assert str(p) in err.message and f"line {line}" in err.message
    for w in words:
        assert w in err.message
    assert "\n" not in err.message


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataFileError, match="file not found") as e:
        load_candles(tmp_path / "nope.csv")
    assert "nope.csv" in e.value.message
    empty = _write(tmp_path, "", name="empty.csv")
    with pytest.raises(DataFileError, match="empty"):
        load_candles(empty)
    header_only = _write(tmp_path, "time,open,high,low,close\n", name="header.csv")
    with pytest.raises(DataFileError, match="no candles"):
        load_candles(header_only)
    with pytest.raises(DataFileError, match="not a file"):
        load_candles(tmp_path)


def test_bad_json_names_line_or_record(tmp_path):
    p = tmp_path / "c.json"
    p.write_text('{"date": {"0": 1},\n "open": [1, }')
    with pytest.raises(DataFileError, match="invalid JSON") as e:
        load_candles(p)
    assert e.value.line == 2
    p.write_text(json.dumps({"date": {"0": 1709287200000, "1": 1709287260000}, "open": {"0": 1, "1": 1},
                             "high": {"0": 2, "1": 2}, "low": {"0": 1, "1": 3}, "close": {"0": 1, "1": 2}}))
    with pytest.raises(DataFileError, match=r"high 2.0 is below low 3.0 \(record 1\)"):
        load_candles(p)
    p.write_text(json.dumps({"date": {"0": 1}, "open": {"0": 1}}))
    with pytest.raises(DataFileError, match="missing column"):
        load_candles(p)


def test_unknown_format_name_is_rejected(tmp_path):
    p = _write(tmp_path, GOOD)
    with pytest.raises(ValueError, match="unknown candle format"):
        load_candles(p, fmt="xlsx")
    assert len(load_candles(p, fmt="csv")) == 2


def test_headerless_mt4_export_and_split_date_time_columns(tmp_path):
    p = _write(tmp_path, "2024.03.01,10:00,1.1,1.2,1.0,1.15,5\n2024.03.01,10:01,1.15,1.25,1.1,1.2,7\n")
    arr = load_candles(p, tz_offset_hours=2)
    assert list(arr["time"]) == [_utc("2024-03-01T08:00"), _utc("2024-03-01T08:01")]
    assert list(arr["tick_volume"]) == [5, 7]
    bad = _write(tmp_path, "2024.03.01,10:00,1.1,1.2,1.0,1.15,5\n2024.03.01,10:01,1.15,1.0,1.1,1.2,7\n", name="b.csv")
    with pytest.raises(DataFileError) as e:
        load_candles(bad)
    assert e.value.line == 2  # no header: the second bar is line 2
    q = _write(tmp_path, "Date,Time,Open,High,Low,Close,Volume\n2024.03.01,10:00:00,1,2,0.5,1.5,3\n", name="dt.csv")
    assert load_candles(q)["time"][0] == _utc("2024-03-01T10:00")


def test_text_with_its_own_utc_offset_ignores_the_declared_one(tmp_path):
    p = _write(tmp_path, "time,open,high,low,close\n2024-03-01T10:00:00+02:00,1,2,0.5,1.5\n2024-03-01T10:01:00+02:00,1,2,0.5,1.5\n")
    assert load_candles(p, tz_offset_hours=5)["time"][0] == _utc("2024-03-01T08:00")
    naive = _write(tmp_path, "time,open,high,low,close\n2024-03-01 10:00,1,2,0.5,1.5\n", name="n.csv")
    assert load_candles(naive, tz_offset_hours=5)["time"][0] == _utc("2024-03-01T05:00")
