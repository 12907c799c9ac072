"""Sanity checks (and one narrow repair) that every loaded candle file passes before anyone trades on it.

A bar with high < low, a duplicate time or a negative volume means the file is broken, and analysis
on it would be quietly wrong; so the loader refuses the file with the exact line instead. `lines`
maps row index -> 1-based file line (None for JSON, where the record index is reported instead).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from core.domain.exceptions import DataFileError

log = logging.getLogger(__name__)


def where(lines: np.ndarray | None, i: int) -> tuple[int | None, str]:
    """Line number for text files, record index for JSON (which has no useful lines)."""
    if lines is None:
        return None, f" (record {i})"
    return int(lines[i]), ""


def repair_lost_decimal_point(v: dict[str, np.ndarray], name: str, lines) -> None:
    """Undo one known export bug in place: a round price like 1.05800 written as "1058".

    RayMacBart's EURUSD files hold ~380 such cells each. No price can legitimately be 50x another
    in the same or an adjacent bar, so an *integral* cell that large is shifted back by the power of
    ten that puts it next to those prices. Only that exact pattern is touched, and the strict OHLC checks run
    afterwards, so a wrong guess still fails loudly instead of slipping through.
    """
    px = np.column_stack([v["open"], v["high"], v["low"], v["close"]])
    # compare with the neighbouring bars too: a one-tick bar can have all four cells broken
    row_min = px.min(axis=1)
    ref = row_min.copy()
    ref[1:] = np.minimum(ref[1:], row_min[:-1])
    ref[:-1] = np.minimum(ref[:-1], row_min[1:])
    ref = ref[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = px / ref
    suspect = (ref > 0) & (ratio >= 50) & (px == np.floor(px))
    if not suspect.any():
        return
    shift = 10.0 ** np.round(np.log10(np.where(suspect, ratio, 1.0)))
    fixed = np.where(suspect, px / shift, px)
    for j, field in enumerate(("open", "high", "low", "close")):
        v[field] = fixed[:, j].copy()
    rows = np.flatnonzero(suspect.any(axis=1))
    line, rec = where(lines, int(rows[0]))
    first_at = f"line {line}" if line is not None else rec.strip(" ()")
    log.warning(
        "%s: repaired %d price(s) with a lost decimal point in %d bar(s) (first at %s)",
        name, int(suspect.sum()), len(rows), first_at,
    )


def fmt_time(t: int) -> str:
    return pd.Timestamp(int(t), unit="s").strftime("%Y-%m-%d %H:%M:%S")


def check_times(t: np.ndarray, name: str, lines) -> None:
    if len(t) < 2:
        return
    d = np.diff(t)
    bad = d <= 0
    if bad.any():
        i = int(np.argmax(bad)) + 1
        line, rec = where(lines, i)
        kind = "duplicate time" if d[i - 1] == 0 else "time goes backwards (file must be sorted oldest first):"
        raise DataFileError(name, f"{kind} {fmt_time(t[i])} UTC after {fmt_time(t[i - 1])} UTC{rec}", line=line)


def check_prices(v: dict[str, np.ndarray], name: str, lines) -> None:
    o, h, lo, c = v["open"], v["high"], v["low"], v["close"]
    checks = [
        (h < lo, lambda i: f"high {float(h[i])!r} is below low {float(lo[i])!r}"),
        ((o > h) | (o < lo), lambda i: f"open {float(o[i])!r} is outside low..high {float(lo[i])!r}..{float(h[i])!r}"),
        ((c > h) | (c < lo), lambda i: f"close {float(c[i])!r} is outside low..high {float(lo[i])!r}..{float(h[i])!r}"),
        ((o <= 0) | (lo <= 0), lambda i: f"non-positive price (open {float(o[i])!r}, low {float(lo[i])!r})"),
    ]
    for field in ("tick_volume", "real_volume", "volume"):
        if field in v:
            arr = v[field]
            checks.append((arr < 0, lambda i, a=arr, f=field: f"negative {f} {float(a[i])!r}"))
    first = None
    for mask, msg in checks:
        if mask.any():
            i = int(np.argmax(mask))
            if first is None or i < first[0]:
                first = (i, msg(i))
    if first is not None:
        line, rec = where(lines, first[0])
        raise DataFileError(name, first[1] + rec, line=line)
