"""Read candle files of every layout we meet into CANDLE_DTYPE arrays (time = epoch seconds UTC).

Why one entry point with format sniffing: the same analysis must run on bars exported from an MT5
terminal, saved from `copy_rates_*` by a script, or downloaded from an exchange, and a trader who
points the config at a new file should not have to name its dialect. Supported layouts:

- ``mt5_export``: MT5 "Export bars", tab-separated ``<DATE> <TIME> <OPEN> … <TICKVOL> <VOL> <SPREAD>``;
- ``csv``: a header line then comma-, tab- or semicolon-separated rows (plain MT5 CSVs, RayMacBart's
  tab files incl. an unnamed trailing spread column, copy_rates frames saved with their index, the
  nautilus BTC 1m CSV). ``time`` may be a date-time string or epoch seconds/milliseconds;
- ``quoted``: every line wrapped in double quotes with tabs inside (hadiforoughi, CRLF);
- ``json``: freqtrade candles, pandas "columns" orient, a list of records, or ``[[ms, o, h, l, c, v], …]``.
Header-less MT4/MT5 history exports (``2024.03.01,10:00,o,h,l,c,vol``) and files with separate date
and time-of-day columns are recognised too.

Volume: MT5 "volume" is tick volume (an integer count). A *fractional* volume can only be traded
size from an exchange; it is then stored (rounded) in both ``real_volume`` and ``tick_volume``,
because exchange data has no tick count and traded size is the best activity proxy we have.

Timestamps in MT5 files are broker server time: ``utc = server - tz_offset_hours``. That includes
epoch numbers saved from ``copy_rates`` (MT5 encodes server time as if it were UTC); pass 0 for
exchange data. Only text that carries its own offset (``…Z``, ``…+02:00``) ignores the declared one.
Bad files raise `DataFileError` naming the file and the 1-based line (header = line 1).
"""
from __future__ import annotations

import io
import json
import logging
import re
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from core.data.candles import from_columns
from core.domain.server_time import check_server_timezone, server_to_utc
from core.data.validate import check_prices, check_times, repair_lost_decimal_point, where
from core.domain.exceptions import DataFileError

log = logging.getLogger(__name__)

FORMATS = ("mt5_export", "csv", "quoted", "json")

_TIME_NAMES = ("time", "timestamp", "datetime", "date", "open_time", "open time")
_ALIASES = {
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "tick_volume": ("tick_volume", "tickvol", "tick volume"),
    "real_volume": ("real_volume", "vol", "real volume"),
    "volume": ("volume", "v"),
    "spread": ("spread",),
}

_cache: dict[tuple, np.ndarray] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def load_candles(path: str | Path, *, tz_offset_hours: float = 0.0, fmt: str | None = None,
                 server_tz: str | None = None) -> np.ndarray:
    """Load one candle file; the result is cached per (path, mtime, size, offset, zone) and read-only.

    `server_tz` ('ny_close' or an IANA name, see `core.domain.server_time`) converts server time with its
    daylight-saving shifts and takes precedence over the fixed `tz_offset_hours`.

    The array is shared between callers, hence read-only: copy it before changing anything.
    """
    p = Path(path)
    name = str(p)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise DataFileError(name, "file not found") from None
    except OSError as e:
        raise DataFileError(name, f"cannot read file: {e.strerror}") from None
    if not p.is_file():
        raise DataFileError(name, "is not a file")
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"unknown candle format {fmt!r} (known: {', '.join(FORMATS)})")
    if server_tz is not None:
        check_server_timezone(server_tz)
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size, float(tz_offset_hours), fmt, server_tz)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    arr = _load_uncached(p, float(tz_offset_hours), fmt, server_tz)
    arr.flags.writeable = False
    with _cache_lock:
        # drop older versions of the same file so an edited file does not pin memory
        for k in [k for k in _cache if k[0] == key[0]]:
            del _cache[k]
        _cache[key] = arr
    return arr


def detect_format(head: bytes) -> str:
    """Guess the layout from the first bytes of a file."""
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text[:1] in (b"{", b"["):
        return "json"
    if text[:1] == b'"' and b"\t" in text.split(b"\n", 1)[0]:
        return "quoted"
    if text[:6].upper() == b"<DATE>":
        return "mt5_export"
    return "csv"


def _load_uncached(p: Path, tz_offset_hours: float, fmt: str | None, server_tz: str | None) -> np.ndarray:
    name = str(p)
    try:
        with p.open("rb") as fh:
            head = fh.read(4096)
    except OSError as e:
        raise DataFileError(name, f"cannot read file: {e.strerror}") from None
    if not head.strip():
        raise DataFileError(name, "file is empty")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # Windows "Unicode" (e.g. saved from Notepad or Excel)
        raise DataFileError(name, "is UTF-16 text, not UTF-8: save or export it as UTF-8")
    fmt = fmt or detect_format(head)
    if fmt == "json":
        df, lines = _read_json(p), None
    else:
        df, lines = _read_delimited(p, fmt, head)
    return _to_candles(df, lines, name, tz_offset_hours, server_tz)



def _parser_error(name: str, err: Exception) -> DataFileError:
    msg = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
    m = re.search(r"(?:line|row) (\d+)", msg)
    line = int(m.group(1)) if m else None
    return DataFileError(name, f"cannot parse: {msg}", line=line)


def _not_utf8(p: Path) -> DataFileError:
    """The codec's "can't decode byte 0xe9 in position 6" counts from a parser chunk, not the file: find
    the first bad byte in the file itself (an error path, so reading it whole is fine)."""
    try:
        p.read_bytes().decode("utf-8")
        where = ""
    except UnicodeDecodeError as e:
        where = f" (byte 0x{e.object[e.start]:02x} at offset {e.start})"
    except OSError:
        where = ""
    return DataFileError(str(p), f"is not UTF-8 text{where}: save or export it as UTF-8")


def _read_delimited(p: Path, fmt: str, head: bytes) -> tuple[pd.DataFrame, np.ndarray]:
    name = str(p)
    first = head.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0].replace(b'"', b"")
    if fmt in ("mt5_export", "quoted"):
        sep = "\t"
    else:
        counts = {s: first.count(s.encode()) for s in ("\t", ",", ";")}
        sep = max(counts, key=counts.get)
        if counts[sep] == 0:
            raise DataFileError(name, "no column separator (tab, comma or semicolon) in the header", line=1)
    source: object = p
    if fmt == "quoted":
        try:
            source = io.BytesIO(p.read_bytes().replace(b'"', b""))
        except OSError as e:
            raise DataFileError(name, f"cannot read file: {e.strerror}") from None
    # a header starting with the separator means the first column is a saved DataFrame index
    index_col = 0 if first.startswith(sep.encode()) else None
    names = _headerless_names(first.decode("utf-8", "replace").strip().split(sep))
    try:
        df = pd.read_csv(
            source, sep=sep, skip_blank_lines=False, index_col=index_col, encoding="utf-8-sig", engine="c",
            header=None if names else "infer", names=names,
        )
    except pd.errors.EmptyDataError:
        raise DataFileError(name, "file is empty") from None
    except UnicodeDecodeError:
        raise _not_utf8(p) from None
    except (pd.errors.ParserError, ValueError) as e:
        raise _parser_error(name, e) from None
    if index_col is not None:
        df = df.reset_index(drop=True)
    lines = np.arange(len(df), dtype=np.int64) + (1 if names else 2)  # header (if any) is line 1
    blank = df.isna().all(axis=1).to_numpy()
    if blank.any():
        df = df.loc[~blank].reset_index(drop=True)
        lines = lines[~blank]
    return df, lines


_DATE_START = re.compile(r"^\d{4}[.\-/]\d\d[.\-/]\d\d")
_CLOCK = re.compile(r"^\d\d?:\d\d(:\d\d)?$")


def _headerless_names(fields: list[str]) -> list[str] | None:
    """Column names for MT4/MT5 history exports that have no header line, else None.

    Such files start straight with a bar: `2024.03.01,10:00,o,h,l,c,tickvol[,vol,spread]` or
    `2024-03-01 10:00,o,h,l,c[,vol[,spread]]`.
    """
    if not fields or not _DATE_START.match(fields[0].strip()):
        return None
    if len(fields) > 1 and _CLOCK.match(fields[1].strip()):
        base = ["date", "time", "open", "high", "low", "close"]
        extra = ["volume", "real_volume", "spread"]
    else:
        base = ["time", "open", "high", "low", "close"]
        extra = ["volume", "spread"]
    n_extra = len(fields) - len(base)
    if n_extra < 0 or n_extra > len(extra):
        return None
    return base + extra[:n_extra]


def _read_json(p: Path) -> pd.DataFrame:
    name = str(p)
    try:
        raw = json.loads(p.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise DataFileError(name, f"invalid JSON: {e.msg} (column {e.colno})", line=e.lineno) from None
    except UnicodeDecodeError:
        raise _not_utf8(p) from None
    except OSError as e:
        raise DataFileError(name, f"cannot read file: {e.strerror or e}") from None
    if isinstance(raw, dict) and raw and all(isinstance(v, dict) for v in raw.values()):
        # pandas "columns" orient: {"open": {"0": 1.0, ...}, ...}; order rows by their index label
        df = pd.DataFrame(raw)
        try:
            order = np.argsort(np.asarray([int(i) for i in df.index]), kind="stable")
            df = df.iloc[order]
        except ValueError:
            pass
        return df.reset_index(drop=True)
    if isinstance(raw, list) and raw and all(isinstance(r, dict) for r in raw):
        return pd.DataFrame(raw)
    if isinstance(raw, list) and raw and all(isinstance(r, list) for r in raw):
        width = len(raw[0])
        if width < 5 or any(len(r) != width for r in raw):
            raise DataFileError(name, "expected rows of [time, open, high, low, close, volume]")
        cols = ["date", "open", "high", "low", "close", "volume", *[f"extra{i}" for i in range(width - 6)]]
        return pd.DataFrame(raw, columns=cols[:width])
    raise DataFileError(name, "unrecognised JSON candle layout (expected columns, records or rows)")


def _norm(col) -> str:
    return str(col).strip().strip("<>").strip().lower()


def _numeric(df: pd.DataFrame, col: str) -> np.ndarray:
    s = df[col]
    if not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        s = pd.to_numeric(s, errors="coerce")
    return s.to_numpy(dtype=np.float64, na_value=np.nan)


_TZ_SUFFIX = r"(?:Z|[+-]\d\d:?\d\d)$"


def _parse_time(df: pd.DataFrame, cols: dict[str, str], name: str, lines) -> tuple[np.ndarray, bool]:
    """Epoch seconds per row, and whether the text carried its own UTC offset (then it wins)."""
    split = "date" in cols and "time" in cols and not pd.api.types.is_numeric_dtype(df[cols["time"]].dtype)
    if split:  # MT4/MT5 exports: a date column and a time-of-day column
        raw = df[cols["date"]].astype(str).str.strip() + " " + df[cols["time"]].astype(str).str.strip()
        text = raw
    else:
        col = next(cols[k] for k in _TIME_NAMES if k in cols)
        raw = df[col]
        if pd.api.types.is_numeric_dtype(raw.dtype):
            num = raw.to_numpy(dtype=np.float64, na_value=np.nan)
            bad = ~np.isfinite(num)
            if bad.any():
                i = int(np.argmax(bad))
                line, rec = where(lines, i)
                raise DataFileError(name, f"missing time value{rec}", line=line)
            # epoch milliseconds are ~1e12 today, epoch seconds ~1e9
            secs = num / 1000.0 if np.nanmax(np.abs(num)) > 1e11 else num
            return np.floor(secs).astype(np.int64), False
        text = raw.astype(str).str.strip()
    first = str(text.iloc[0]) if len(text) else ""  # sniff one value; a whole-column regex costs more than parsing
    aware = re.search(_TZ_SUFFIX, first) is not None
    ts = None
    dotted = re.match(r"\d{4}\.\d\d\.\d\d", first) is not None
    formats = ("%Y.%m.%d %H:%M:%S", "%Y.%m.%d %H:%M", "mixed") if dotted else ("ISO8601", "mixed")
    for fmt in formats:
        try:
            ts = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
        except ValueError:
            continue
        if not ts.isna().any():
            break
    bad = ts.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        line, rec = where(lines, i)
        raise DataFileError(name, f"cannot parse time {str(raw.iloc[i])!r}{rec}", line=line)
    return ts.dt.tz_localize(None).to_numpy().astype("datetime64[s]").astype(np.int64), aware


def _to_candles(df: pd.DataFrame, lines, name: str, tz_offset_hours: float, server_tz: str | None = None) -> np.ndarray:
    cols: dict[str, str] = {}
    for c in df.columns:
        cols.setdefault(_norm(c), c)
    found = ", ".join(_norm(c) for c in df.columns)
    header_line = 1 if lines is not None else None

    picked: dict[str, str] = {}
    for field, names in _ALIASES.items():
        for n in names:
            if n in cols:
                picked[field] = cols[n]
                break
    missing = [f for f in ("open", "high", "low", "close") if f not in picked]
    if not any(n in cols for n in _TIME_NAMES):
        missing.insert(0, "time")
    if missing:
        raise DataFileError(name, f"missing column(s) {', '.join(missing)} (found: {found})", line=header_line)

    # RayMacBart: an unnamed column right after volume holds the spread in points
    unnamed = [c for c in df.columns if _norm(c).startswith("unnamed:")]
    if "spread" not in picked and unnamed and ("volume" in picked or "tick_volume" in picked):
        last = df.columns[-1]
        if last in unnamed:
            picked["spread"] = last

    t, aware = _parse_time(df, cols, name, lines)
    n = len(t)
    if n == 0:
        raise DataFileError(name, "no candles in file", line=header_line)

    values: dict[str, np.ndarray] = {}
    for field in ("open", "high", "low", "close", "tick_volume", "real_volume", "volume", "spread"):
        if field in picked:
            v = _numeric(df, picked[field])
            bad = np.isnan(v)
            if bad.any():
                i = int(np.argmax(bad))
                line, rec = where(lines, i)
                raw = df[picked[field]].iloc[i]
                what = "missing value" if pd.isna(raw) else f"non-numeric value {str(raw)!r}"
                raise DataFileError(name, f"{what} in column '{_norm(picked[field])}'{rec}", line=line)
            values[field] = v

    if not aware:  # naive times are broker server time; explicit offsets in the text are already UTC
        t = server_to_utc(t, server_tz) if server_tz else t - int(round(tz_offset_hours * 3600))
    check_times(t, name, lines)
    repair_lost_decimal_point(values, name, lines)
    check_prices(values, name, lines)

    tick = values.get("tick_volume")
    real = values.get("real_volume")
    vol = values.get("volume")
    if vol is not None:
        traded = bool(np.any(vol != np.floor(vol)))
        if tick is None:
            tick = np.rint(vol)
        if traded and real is None:
            real = np.rint(vol)
    return from_columns(
        t,
        values["open"],
        values["high"],
        values["low"],
        values["close"],
        tick_volume=tick,
        spread=values.get("spread"),
        real_volume=real,
    )
