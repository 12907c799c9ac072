"""MarketData: configured files per symbol, resampled timeframes, clear errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

from core.config.loading import load_config, validate_config_dict
from core.config.paths import DEFAULT_CONFIG_PATH, resolve_path
from core.data.catalog import MarketData
from core.data.loaders import load_candles
from core.data.resample import resample
from core.domain.exceptions import DataFileError, UnknownSymbolError, UserFacingError
from core.domain.timeframes import Timeframe


@pytest.fixture(scope="module")
def cfg():
    return load_config()


@pytest.fixture(scope="module")
def md(cfg):
    return MarketData(cfg)


def test_configured_file_is_loaded_with_the_symbols_server_clock(cfg, md):
    """The broker's server runs at New York time + 7 h: UTC+2 in winter, UTC+3 while the US is on DST."""
    spec = cfg.symbols["XAUUSDc"]
    got = md.candles("XAUUSDc", "M5")
    raw = load_candles(resolve_path(spec.data["M5"]))
    assert spec.data_timezone == "ny_close"
    shift = raw["time"] - got["time"]
    winter = raw["time"] < 1741514400  # 2025-03-09 10:00 server = 07:00 UTC, when US DST starts
    assert set(np.unique(shift[winter])) == {7200}
    summer = (raw["time"] > 1741800000) & (raw["time"] < 1762000000)  # up to 2025-11-01
    assert set(np.unique(shift[summer])) == {10800}
    # gold's week ends at 17:00 New York every week of the year: 21:00 UTC in summer, 22:00 in winter
    fridays = got[(got["time"] % 604800 // 86400) == 1]  # epoch day 0 was a Thursday: +1 = Friday
    last_bar_close = (fridays["time"] % 86400).max() + 300
    assert last_bar_close <= 22 * 3600
    assert md.candles("xauusdc", "m5") is got  # case-insensitive, cached


def test_missing_timeframe_is_resampled_from_the_coarsest_divisor(cfg, md):
    m15 = md.candles("BTCUSDc", Timeframe.M15)
    m5 = md.candles("BTCUSDc", "M5")
    expect = resample(m5, "M15", drop_incomplete=True)
    np.testing.assert_array_equal(m15, expect)
    # M5 spans far more history than M1, so M15 must come from M5
    assert m15["time"][0] < md.candles("BTCUSDc", "M1")["time"][0]
    assert not m15.flags.writeable
    h1 = md.candles("BTCUSDc", "1h")
    assert np.all(h1["time"] % 3600 == 0) and len(h1) > 1000


def test_timeframes_lists_files_and_derivable(md):
    assert md.timeframes("BTCUSDc") == [Timeframe.M1, Timeframe.M5, Timeframe.M15, Timeframe.M30,
                                        Timeframe.H1, Timeframe.H4, Timeframe.D1]
    assert Timeframe.M1 not in md.timeframes("EURUSDc")
    with pytest.raises(UserFacingError, match="No M1 data for EURUSDc"):
        md.candles("EURUSDc", "M1")


def test_until_returns_only_closed_bars(md):
    m5 = md.candles("EURUSDc", "M5")
    t = float(m5["time"][100] + 300)  # bar 100 closes exactly now
    seen = md.candles("EURUSDc", "M5", until=t)
    assert len(seen) == 101 and seen["time"][-1] == m5["time"][100]
    assert len(md.candles("EURUSDc", "M5", until=t - 1)) == 100


def test_unknown_symbol_and_timeframe(md):
    with pytest.raises(UnknownSymbolError) as e:
        md.candles("BTCUSD", "M5")
    assert "BTCUSDc" in e.value.suggestions and "BTCUSDc" in e.value.message
    with pytest.raises(UserFacingError, match="unknown timeframe"):
        md.candles("BTCUSDc", "M7")


def test_missing_data_file_is_a_data_file_error(tmp_path):
    raw = json.loads(DEFAULT_CONFIG_PATH.read_text())
    raw["symbols"]["EURUSDc"]["data"]["M5"] = str(tmp_path / "gone.csv")
    cfg, issues = validate_config_dict(raw)
    assert not issues
    md = MarketData(cfg)
    with pytest.raises(DataFileError, match="gone.csv: file not found"):
        md.candles("EURUSDc", "M5")
    assert len(md.candles("EURUSDc", "M30")) > 0  # built from M15, which still exists
