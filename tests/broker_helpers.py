"""Shared helpers for the broker tests: real XAUUSD data, symbol specs and a paper broker factory."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.config import SymbolSpec, market_data_dir
from core.data.candles import from_columns

XAU_M5 = "budimanlai__forex-tick/data/XAUUSD_M5.csv"
XAU_OFFSET_HOURS = 2.0  # config/range_scalping.json: XAUUSDc data_tz_offset_hours


def xau_spec(**over) -> SymbolSpec:
    base = dict(digits=2, point=0.01, contract_size=100, volume_min=0.01, volume_step=0.01,
                stops_level_points=20, default_spread_points=20)
    return SymbolSpec(**{**base, **over})


def load_xau_m5() -> np.ndarray:
    path = Path(market_data_dir()) / XAU_M5
    if not path.exists():
        pytest.skip(f"market data not available: {path}")
    try:
        from core.data.loaders import load_candles
    except ImportError:
        load_candles = None
    if load_candles is not None:
        return load_candles(path, tz_offset_hours=XAU_OFFSET_HOURS)
    import pandas as pd

    df = pd.read_csv(path, sep="\t")
    stamp = pd.to_datetime(df["<DATE>"] + " " + df["<TIME>"], format="%Y.%m.%d %H:%M:%S")
    epoch = (stamp - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1) - int(XAU_OFFSET_HOURS * 3600)
    return from_columns(epoch.to_numpy(), df["<OPEN>"].to_numpy(), df["<HIGH>"].to_numpy(),
                        df["<LOW>"].to_numpy(), df["<CLOSE>"].to_numpy(), df["<TICKVOL>"].to_numpy(),
                        df["<SPREAD>"].to_numpy(), df["<VOL>"].to_numpy())
