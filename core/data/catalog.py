"""Historical candles per configured symbol and timeframe.

The config names, per symbol, the files for the timeframes it has (`symbols.X.data`) and the
broker's server-time offset. Analysis asks for any timeframe; when no file exists for it, the
coarsest configured file that divides it is resampled (e.g. BTCUSDc M15/H1 from M5, not M1): the
coarser export usually spans far more history and is cheaper to aggregate, so the config only has
to list what really exists on disk.
"""
from __future__ import annotations

import threading

import numpy as np

from core.config.model import AppConfig
from core.config.paths import resolve_path
from core.data.loaders import load_candles
from core.data.resample import resample
from core.domain.exceptions import UnknownSymbolError, UserFacingError
from core.domain.timeframes import Timeframe


class MarketData:
    def __init__(self, cfg: AppConfig) -> None:
        self._cfg = cfg
        self._cache: dict[tuple[str, Timeframe], np.ndarray] = {}
        self._lock = threading.Lock()

    def symbol_name(self, symbol: str) -> str:
        """The configured spelling of `symbol` (case-insensitive), or UnknownSymbolError."""
        name = self._cfg.resolve_symbol(symbol)
        if name is None:
            raise self._cfg.unknown_symbol(symbol)
        return name

    def _configured(self, name: str) -> dict[Timeframe, str]:
        out: dict[Timeframe, str] = {}
        for tf_text, path in self._cfg.symbols[name].data.items():
            out[Timeframe.parse(tf_text)] = path
        return out

    def timeframes(self, symbol: str) -> list[Timeframe]:
        """Every timeframe available for `symbol`: configured files plus what they can be resampled to."""
        files = self._configured(self.symbol_name(symbol))
        if not files:
            return []
        finest = min(tf.seconds for tf in files)
        found = set(files) | {tf for tf in Timeframe if tf.seconds > finest and tf.seconds % finest == 0}
        return sorted(found, key=lambda tf: tf.seconds)

    def candles(self, symbol: str, timeframe: Timeframe | str, *, until: float | None = None) -> np.ndarray:
        """All bars of `symbol` on `timeframe` (read-only CANDLE_DTYPE, time in UTC).

        With `until`, only bars that had closed by that time (open + length <= until): what a live
        bot would have seen then, for replays without look-ahead.
        """
        name = self.symbol_name(symbol)
        try:
            tf = Timeframe.parse(timeframe)
        except ValueError as e:
            raise UserFacingError(str(e)) from None
        key = (name, tf)
        with self._lock:
            arr = self._cache.get(key)
        if arr is None:
            arr = self._build(name, tf)
            with self._lock:
                self._cache[key] = arr
        if until is not None:
            arr = arr[: int(np.searchsorted(arr["time"] + tf.seconds, until, side="right"))]
        return arr

    def _build(self, name: str, tf: Timeframe) -> np.ndarray:
        spec = self._cfg.symbols[name]
        files = self._configured(name)
        if tf in files:
            return load_candles(resolve_path(files[tf]), tz_offset_hours=spec.data_tz_offset_hours,
                                server_tz=spec.data_timezone)
        sources = sorted(
            (src for src in files if src.seconds < tf.seconds and tf.seconds % src.seconds == 0),
            key=lambda s: s.seconds,
            reverse=True,
        )
        if not sources:
            have = ", ".join(t.value for t in self.timeframes(name)) or "none"
            raise UserFacingError(f"No {tf.value} data for {name} (available: {have}).")
        src = sources[0]
        base = self.candles(name, src)
        out = resample(base, tf, drop_incomplete=True, source_seconds=src.seconds)
        out.flags.writeable = False
        return out
