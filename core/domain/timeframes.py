"""Timeframe names as MT5 spells them, with their length in seconds.

Kept in one place so that loaders, resampling, brokers and the analysis agree on what "M5" means.
"""
from __future__ import annotations

from enum import Enum


class Timeframe(str, Enum):
    M1 = "M1"
    M5 = "M5"
    M15 = "M15"
    M30 = "M30"
    H1 = "H1"
    H4 = "H4"
    D1 = "D1"

    @property
    def seconds(self) -> int:
        # by member, not `self.value`: an enum's `.value` is a descriptor call, and this runs thousands of
        # times per replay step
        return _SECONDS_OF[self]

    @classmethod
    def parse(cls, value: str | Timeframe) -> Timeframe:
        """Accept 'm5', '5m', 'M5' alike: traders and data files spell them all three ways."""
        if isinstance(value, Timeframe):
            return value
        text = str(value).strip().upper()
        if text and text[-1] in "MHD" and text[:-1].isdigit():
            text = text[-1] + text[:-1]
        try:
            return cls(text)
        except ValueError:
            known = ", ".join(t.value for t in cls)
            raise ValueError(f"unknown timeframe {value!r} (known: {known})") from None


_SECONDS = {"M1": 60, "M5": 300, "M15": 900, "M30": 1800, "H1": 3600, "H4": 14400, "D1": 86400}
_SECONDS_OF = {tf: _SECONDS[tf.value] for tf in Timeframe}
