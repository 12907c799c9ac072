"""Shared helpers for the broker tests: real XAUUSD data, symbol specs and a paper broker factory."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.config.market import SymbolSpec
from core.config.paths import market_data_dir

XAU_M5 = "budimanlai__forex-tick/data/XAUUSD_M5.csv"
XAU_OFFSET_HOURS = 2.0  # config/range_scalping.json: XAUUSDc data_tz_offset_hours


def xau_spec(**over) -> SymbolSpec:
    base = dict(digits=2, point=0.01, contract_size=100, volume_min=0.01, volume_step=0.01,
                stops_level_points=20, default_spread_points=20)
    return SymbolSpec(**{**base, **over})


def load_xau_m5() -> np.ndarray:
    path = Path(market_data_dir()) / XAU_M5
    if not path.exists():
        pytest.fail(f"real market data missing: {path} (the shared data must sit at ../shared/data/market)")
    from core.data.loaders import load_candles

    return load_candles(path, tz_offset_hours=XAU_OFFSET_HOURS)
