"""The one candle type of the project: MT5's `copy_rates_*` structured-array dtype.

Using MT5's own layout means bars from the terminal, from the RPyC bridge, from CSV exports and from
the paper broker are interchangeable without conversion, and numpy slicing keeps analysis fast.
`time` is always epoch seconds in UTC; loaders convert broker server time before building arrays.
"""
from __future__ import annotations

import numpy as np

CANDLE_DTYPE = np.dtype(
    [
        ("time", "<i8"),
        ("open", "<f8"),
        ("high", "<f8"),
        ("low", "<f8"),
        ("close", "<f8"),
        ("tick_volume", "<u8"),
        ("spread", "<i4"),
        ("real_volume", "<u8"),
    ]
)


def empty(n: int = 0) -> np.ndarray:
    return np.zeros(n, dtype=CANDLE_DTYPE)


def from_columns(
    time: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    tick_volume: np.ndarray | None = None,
    spread: np.ndarray | None = None,
    real_volume: np.ndarray | None = None,
) -> np.ndarray:
    out = empty(len(time))
    out["time"] = np.asarray(time, dtype=np.int64)
    out["open"] = open_
    out["high"] = high
    out["low"] = low
    out["close"] = close
    if tick_volume is not None:
        out["tick_volume"] = np.asarray(tick_volume, dtype=np.float64).astype(np.uint64)
    if spread is not None:
        out["spread"] = np.asarray(spread, dtype=np.float64).astype(np.int32)
    if real_volume is not None:
        out["real_volume"] = np.asarray(real_volume, dtype=np.float64).astype(np.uint64)
    return out


def as_candles(rates) -> np.ndarray:
    """Coerce anything with MT5's rate fields (a bridge proxy, a record list) into CANDLE_DTYPE."""
    if isinstance(rates, np.ndarray) and rates.dtype == CANDLE_DTYPE:
        return rates
    arr = np.asarray(rates)
    out = empty(len(arr))
    for name in CANDLE_DTYPE.names:
        if arr.dtype.names and name in arr.dtype.names:
            out[name] = arr[name]
    return out
