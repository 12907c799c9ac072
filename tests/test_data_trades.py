"""Trade prints: both real files, side conventions, bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.config.paths import market_data_dir
from core.data.trades import TRADE_DTYPE, load_trades, to_frame
from core.domain.exceptions import DataFileError

MARKET = market_data_dir()
PARQUET = MARKET / "nautechsystems__nautilus_trader/tests/test_data/binance/btcusdt-trades.parquet"
FREQTRADE = MARKET / "freqtrade__freqtrade/tests/testdata/orderflow/public_trades_list.csv"


def test_nautilus_parquet_buyer_maker_strings():
    tr = load_trades(PARQUET)
    df = pd.read_parquet(PARQUET)
    assert tr.dtype == TRADE_DTYPE and len(tr) == 2001
    assert tr["time"][0] == pytest.approx(1610064000.278, abs=1e-6)
    # "True" means the buyer was the maker, so the taker sold: side -1
    maker = df["buyer_maker"].astype(str) == "True"
    assert 0 < maker.sum() < len(df)
    np.testing.assert_array_equal(tr["side"], np.where(maker, -1, 1))
    np.testing.assert_array_equal(tr["qty"], df["quantity"].to_numpy())
    assert np.all(np.diff(tr["time"]) >= 0)


def test_freqtrade_csv_taker_side():
    tr = load_trades(FREQTRADE)
    assert len(tr) == 1000
    assert tr["time"][0] == pytest.approx(1675329600.138, abs=1e-6)
    assert list(tr["side"][:2]) == [1, -1] and tr["price"][0] == 1666.8 and tr["qty"][0] == 26.062
    frame = to_frame(tr)
    assert list(frame.columns) == ["time", "price", "qty", "side"] and len(frame) == 1000


def test_bad_trade_files(tmp_path):
    with pytest.raises(DataFileError, match="file not found"):
        load_trades(tmp_path / "x.csv")
    p = tmp_path / "t.csv"
    p.write_text("timestamp,price,amount,side\n1675329600138,1.0,2.0,buy\n1675329600139,1.0,2.0,hold\n")
    with pytest.raises(DataFileError, match="hold") as e:
        load_trades(p)
    assert e.value.line == 3
    p.write_text("timestamp,price,side\n1675329600138,1.0,buy\n")
    with pytest.raises(DataFileError, match="missing column"):
        load_trades(p)
    p.write_text("timestamp,price,amount,buyer_maker\n1675329600138,-1.0,2.0,True\n")
    with pytest.raises(DataFileError, match="bad price"):
        load_trades(p)
