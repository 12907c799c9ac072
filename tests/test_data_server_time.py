"""Broker server time with DST: 'ny_close' (New York + 7 h) and IANA zones, vs the fixed offset."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.config.loading import validate_config_dict
from core.config.paths import DEFAULT_CONFIG_PATH
from core.data.loaders import load_candles
from core.domain.server_time import check_server_timezone, server_to_utc


def _epoch(*texts: str) -> np.ndarray:
    return pd.to_datetime(list(texts)).as_unit("s").asi8


def test_ny_close_is_utc_plus_2_in_winter_and_plus_3_on_us_summer_dates():
    server = _epoch("2025-01-10 00:00", "2025-03-10 12:00", "2025-03-28 12:00", "2025-06-06 23:55",
                    "2025-11-03 12:00")
    utc = _epoch("2025-01-09 22:00", "2025-03-10 09:00", "2025-03-28 09:00", "2025-06-06 20:55",
                 "2025-11-03 10:00")
    np.testing.assert_array_equal(server_to_utc(server, "ny_close"), utc)


def test_an_iana_zone_switches_on_its_own_dates():
    # Europe/Athens is still UTC+2 on 2025-03-10 (the EU switches on 2025-03-30), unlike ny_close
    np.testing.assert_array_equal(server_to_utc(_epoch("2025-03-10 12:00"), "Europe/Athens"),
                                  _epoch("2025-03-10 10:00"))
    np.testing.assert_array_equal(server_to_utc(_epoch("2025-07-01 12:00"), "Europe/Athens"),
                                  _epoch("2025-07-01 09:00"))


def test_unknown_zone_is_a_clear_config_error():
    with pytest.raises(ValueError, match="unknown server time zone 'Mars/Olympus'"):
        check_server_timezone("Mars/Olympus")
    raw = json.loads(DEFAULT_CONFIG_PATH.read_text())
    raw["symbols"]["XAUUSDc"]["data_timezone"] = "Mars/Olympus"
    cfg, issues = validate_config_dict(raw)
    assert cfg is None
    assert [i.path for i in issues] == ["symbols.XAUUSDc.data_timezone"]


def test_loader_applies_the_zone_and_caches_it_apart_from_the_fixed_offset(tmp_path):
    f = tmp_path / "bars.csv"
    f.write_text("time,open,high,low,close,volume\n"
                 "2025-01-10 10:00,1,2,0.5,1.5,10\n"
                 "2025-07-10 10:00,1,2,0.5,1.5,10\n")
    fixed = load_candles(f, tz_offset_hours=2)
    zoned = load_candles(f, tz_offset_hours=2, server_tz="ny_close")
    np.testing.assert_array_equal(fixed["time"], _epoch("2025-01-10 08:00", "2025-07-10 08:00"))
    np.testing.assert_array_equal(zoned["time"], _epoch("2025-01-10 08:00", "2025-07-10 07:00"))
