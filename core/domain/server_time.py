"""Broker server time → UTC, including the daylight-saving shift most MT5 brokers make.

Most MT5 brokers run their server clock at New York time + 7 hours ("New York close" time: the
trading day rolls at 17:00 New York = 00:00 server), which is UTC+2 in the northern winter and UTC+3
in summer, switching on the *US* dates. A fixed offset is therefore an hour wrong for half the year,
which moves sessions, the previous-day range, the VWAP reset and news windows by an hour. The config
names the server zone instead: `ny_close`, or any IANA zone name for brokers that follow one.
"""
from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

NY_CLOSE = "ny_close"
_NY_CLOSE_SHIFT = 7 * 3600  # server = New York local time + 7 h


def check_server_timezone(name: str) -> str:
    """Return `name` if usable, else raise ValueError with a sentence a config author understands."""
    if name == NY_CLOSE:
        return name
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown server time zone {name!r}: use 'ny_close' (UTC+2 winter / UTC+3 summer, most MT5 "
            "brokers) or an IANA name like 'Europe/Athens'"
        ) from None
    return name


def server_to_utc(t: np.ndarray, zone: str) -> np.ndarray:
    """Naive server-clock epoch seconds → UTC epoch seconds (vectorised).

    Server-local times that do not exist or repeat at a DST switch fall on weekend/closed hours for
    every broker we know of; they are resolved as standard time, never dropped.
    """
    t = np.asarray(t, dtype=np.int64)
    if len(t) == 0:
        return t.copy()
    shift = _NY_CLOSE_SHIFT if zone == NY_CLOSE else 0
    tz = "America/New_York" if zone == NY_CLOSE else zone
    local = pd.DatetimeIndex((t - shift).astype("datetime64[s]"))
    utc = local.tz_localize(tz, ambiguous=np.zeros(len(t), dtype=bool), nonexistent="shift_forward").tz_convert("UTC")
    return (utc.as_unit("s").asi8).astype(np.int64)
