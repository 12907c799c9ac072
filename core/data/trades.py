"""Read exchange trade prints (tick-by-tick trades) for order-flow analysis.

Order flow needs only four things per print: when, at what price, how much, and which side was the
aggressor. Exchanges spell the side differently (Binance's `buyer_maker`, ccxt's taker `side`), so
this module folds them into one signed convention: side = +1 when the taker bought (lifted the
offer), -1 when the taker sold. Times are epoch seconds UTC as floats (millisecond precision kept).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.domain.exceptions import DataFileError

TRADE_DTYPE = np.dtype([("time", "<f8"), ("price", "<f8"), ("qty", "<f8"), ("side", "i1")])

_TRUE = {"true", "1", "t", "yes", "y"}
_FALSE = {"false", "0", "f", "no", "n"}


def load_trades(path: str | Path) -> np.ndarray:
    """Load a trades file (.parquet or .csv) into a TRADE_DTYPE array sorted by time."""
    p = Path(path)
    name = str(p)
    if not p.is_file():
        raise DataFileError(name, "file not found")
    try:
        if p.suffix.lower() == ".parquet":
            df = pd.read_parquet(p)
            lines = None
        else:
            first = p.open("rb").readline()
            index_col = 0 if first.startswith(b",") else None
            df = pd.read_csv(p, index_col=index_col)
            lines = np.arange(len(df)) + 2
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise DataFileError(name, f"cannot read trades: {str(e).splitlines()[0] if str(e) else e}") from None
    return _to_trades(df.reset_index(drop=True), name, lines)


def _where(lines, i: int) -> tuple[int | None, str]:
    return (None, f" (row {i})") if lines is None else (int(lines[i]), "")


def _to_trades(df: pd.DataFrame, name: str, lines) -> np.ndarray:
    cols = {str(c).strip().lower(): c for c in df.columns}
    tcol = next((cols[k] for k in ("timestamp", "time", "ts", "date") if k in cols), None)
    pcol = cols.get("price")
    qcol = next((cols[k] for k in ("quantity", "qty", "amount", "size", "volume") if k in cols), None)
    missing = [n for n, c in (("timestamp", tcol), ("price", pcol), ("quantity/amount", qcol)) if c is None]
    if "side" not in cols and "buyer_maker" not in cols and "is_buyer_maker" not in cols:
        missing.append("side or buyer_maker")
    if missing:
        raise DataFileError(name, f"missing column(s) {', '.join(missing)}", line=1 if lines is not None else None)

    t = _times(df[tcol], name, lines)
    price = pd.to_numeric(df[pcol], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    qty = pd.to_numeric(df[qcol], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    for label, arr in (("price", price), ("quantity", qty)):
        bad = ~np.isfinite(arr) | (arr <= 0) if label == "price" else ~np.isfinite(arr) | (arr < 0)
        if bad.any():
            i = int(np.argmax(bad))
            line, rec = _where(lines, i)
            raise DataFileError(name, f"bad {label} value {df[pcol if label == 'price' else qcol].iloc[i]!r}{rec}", line=line)

    if "side" in cols:
        text = df[cols["side"]].astype(str).str.strip().str.lower()
        side = np.where(text == "buy", 1, np.where(text == "sell", -1, 0)).astype(np.int8)
        bad = side == 0
        what = "side (expected buy/sell)"
        raw = df[cols["side"]]
    else:
        raw = df[cols.get("buyer_maker", cols.get("is_buyer_maker"))]
        # the strings "True"/"False" (nautilus parquet) are truthy both; parse them explicitly
        text = raw.astype(str).str.strip().str.lower()
        maker = np.where(text.isin(_TRUE), 1, np.where(text.isin(_FALSE), 0, -1))
        bad = maker < 0
        # buyer is maker -> the seller was the aggressor
        side = np.where(maker == 1, -1, 1).astype(np.int8)
        what = "buyer_maker (expected True/False)"
    if bad.any():
        i = int(np.argmax(bad))
        line, rec = _where(lines, i)
        raise DataFileError(name, f"bad {what}: {raw.iloc[i]!r}{rec}", line=line)

    out = np.empty(len(t), dtype=TRADE_DTYPE)
    out["time"], out["price"], out["qty"], out["side"] = t, price, qty, side
    if len(out) > 1 and np.any(np.diff(out["time"]) < 0):
        out = out[np.argsort(out["time"], kind="stable")]
    return out


def _times(s: pd.Series, name: str, lines) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        ts = s.dt.tz_convert("UTC").dt.tz_localize(None) if s.dt.tz is not None else s
        bad = ts.isna().to_numpy()
        vals = ts.to_numpy().astype("datetime64[ns]").astype(np.int64) / 1e9
    elif pd.api.types.is_numeric_dtype(s.dtype):
        num = s.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(num)
        big = np.nanmax(np.abs(num)) if (~bad).any() else 0.0
        vals = num / 1e9 if big > 1e17 else num / 1e6 if big > 1e14 else num / 1e3 if big > 1e11 else num
    else:
        ts = pd.to_datetime(s.astype(str), format="ISO8601", errors="coerce", utc=True).dt.tz_localize(None)
        bad = ts.isna().to_numpy()
        vals = ts.to_numpy().astype("datetime64[ns]").astype(np.int64) / 1e9
    if bad.any():
        i = int(np.argmax(bad))
        line, rec = _where(lines, i)
        raise DataFileError(name, f"cannot parse time {s.iloc[i]!r}{rec}", line=line)
    return np.asarray(vals, dtype=np.float64)


def to_frame(trades: np.ndarray) -> pd.DataFrame:
    """The same prints as a DataFrame, for callers that prefer pandas (not for hot paths)."""
    return pd.DataFrame({name: trades[name] for name in TRADE_DTYPE.names})
