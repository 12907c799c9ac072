"""Real replay data for a fresh clone: the EURUSD hourly bars that ship inside the `backtesting` package.

The configured market files live outside the repository (`${MARKET_DATA}`, never committed). When none
of them exists, `make run` must still start on *real* prices, so we fall back to
`backtesting/test/EURUSD.csv` (real EUR/USD H1 bars, installed with the dev dependencies) and switch
the analysis to H1 to match. Nothing is copied into the project; the file is read where pip put it.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from core.config.loading import validate_config_dict
from core.config.model import AppConfig
from core.config.paths import resolve_path
from core.data.candles import from_columns

log = logging.getLogger(__name__)

SYMBOL = "EURUSDc"
TIMEFRAME = "H1"


def configured_data_exists(cfg: AppConfig) -> bool:
    return any(resolve_path(p).exists() for spec in cfg.symbols.values() for p in spec.data.values())


def backtesting_eurusd_path() -> Path | None:
    try:
        import backtesting
    except ImportError:
        return None
    path = Path(backtesting.__file__).parent / "test" / "EURUSD.csv"
    return path if path.exists() else None


def load_backtesting_eurusd(path: Path) -> np.ndarray:
    """The package's CSV has an unnamed datetime index column: parse it ourselves (times taken as UTC)."""
    import pandas as pd

    df = pd.read_csv(path, index_col=0, parse_dates=True)
    t = df.index.to_numpy().astype("datetime64[s]").astype(np.int64)
    vol = df["Volume"].to_numpy() if "Volume" in df else None
    return from_columns(t, df["Open"].to_numpy(), df["High"].to_numpy(), df["Low"].to_numpy(),
                        df["Close"].to_numpy(), vol)


def fallback_config(cfg: AppConfig) -> AppConfig:
    """The same config, reduced to EURUSDc analysed on H1 (the timeframe of the bundled bars)."""
    raw = cfg.model_dump(mode="json")
    spec = dict(raw["symbols"][SYMBOL])
    spec["data"] = {}
    spec["data_tz_offset_hours"] = 0
    spec["data_timezone"] = None
    raw["symbols"] = {SYMBOL: spec}
    raw["symbol_overrides"] = {k: v for k, v in raw.get("symbol_overrides", {}).items() if k == SYMBOL}
    raw["range_detection"]["timeframe"] = TIMEFRAME
    raw["range_detection"]["nested_timeframes"] = [TIMEFRAME]
    new, issues = validate_config_dict(raw)
    if new is None:
        raise ValueError("fallback config invalid: " + "; ".join(map(str, issues)))
    return new
