"""Sweep output files: the results table (Parquet + CSV), the heatmap, the out-of-sample equity, the summary.

Charts use matplotlib's object API on an Agg canvas (no pyplot), like the backtest's equity chart, so
they can be drawn from a worker thread.
"""
from __future__ import annotations

import io
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.backtest.sweep.summary import SweepSummary, score

LIST_COLUMNS = ("r", "pnl", "exit_times", "entry_times", "tickets")


def results_frame(rows: list[dict[str, Any]], keys: list[str], objective: str, min_trades: int):
    import pandas as pd

    recs = []
    for r in rows:
        rec = {k: v for k, v in r.items() if k not in LIST_COLUMNS and k != "params"}
        for k in keys:
            rec[k] = r["params"][k]
        rec["params"] = json.dumps(r["params"], sort_keys=True)
        rec["objective"] = score(r, objective, min_trades)
        recs.append(rec)
    return pd.DataFrame.from_records(recs)


def _canvas(w: float = 7.2, h: float = 5.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=120)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def heatmap_png(frame, summary: SweepSummary) -> bytes:
    """Mean in-sample objective (over folds and the other params) on the two params that move it most."""
    keys = summary.important_params[:2]
    is_rows = frame[frame["phase"] == "is"]
    val = is_rows["objective"].astype(float)
    if val.isna().all():
        val = is_rows[summary.objective].astype(float)
    data = is_rows.assign(_v=val)
    fig = _canvas()
    ax = fig.add_subplot(1, 1, 1)
    if len(keys) == 1:
        piv = data.groupby(keys[0])["_v"].mean().to_frame().T
        ylabels = [summary.objective]
        xlabels = list(piv.columns)
    else:
        piv = data.pivot_table(index=keys[1], columns=keys[0], values="_v", aggfunc="mean")
        ylabels, xlabels = list(piv.index), list(piv.columns)
    arr = piv.to_numpy(dtype=float)
    finite = arr[np.isfinite(arr)]
    lim = float(np.max(np.abs(finite))) if finite.size else 1.0
    im = ax.imshow(arr, cmap="RdYlGn", vmin=-lim or -1, vmax=lim or 1, aspect="auto", origin="lower")
    ax.set_xticks(range(len(xlabels)), [f"{x:g}" if isinstance(x, float) else str(x) for x in xlabels])
    ax.set_yticks(range(len(ylabels)), [f"{y:g}" if isinstance(y, float) else str(y) for y in ylabels])
    ax.set_xlabel(keys[0])
    ax.set_ylabel(keys[1] if len(keys) > 1 else "")
    for (i, j), v in np.ndenumerate(arr):
        ax.text(j, i, "-" if not math.isfinite(v) else f"{v:+.3f}", ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, label=f"in-sample {summary.objective} (mean over folds)")
    ax.set_title(f"{summary.symbol} sweep: {summary.objective_text}\n('-' = fewer than {summary.min_trades} trades)",
                 fontsize=10)
    return _png(fig)


def oos_equity_png(rows: list[dict[str, Any]], summary: SweepSummary) -> bytes:
    """Cumulative net P&L of the out-of-sample trades of every fold, in time order, folds marked."""
    oos = sorted((r for r in rows if r["phase"] == "oos"), key=lambda r: r["fold"])
    pts = sorted((t, p) for r in oos for t, p in zip(r["exit_times"], r["pnl"], strict=True))
    fig = _canvas(7.2, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    if pts:
        xs = [datetime.fromtimestamp(t, UTC) for t, _ in pts]
        ys = np.cumsum([p for _, p in pts])
        ax.step(xs, ys, where="post", color="#1565c0")
    for fr in summary.folds:
        ax.axvline(datetime.fromtimestamp(fr.oos_start, UTC), color="#90a4ae", lw=0.8, ls="--")
    ax.axhline(0, color="#616161", lw=0.6)
    ci = summary.oos_expectancy_r_ci
    ci_txt = f"[{ci.low:+.3f}, {ci.high:+.3f}] R" if ci.low is not None else "n/a"
    ax.set_title(f"{summary.symbol} out-of-sample equity ({summary.oos_trades} trades, expectancy CI {ci_txt})\n"
                 f"{summary.verdict}", fontsize=9)
    ax.set_ylabel("cumulative net P&L")
    fig.autofmt_xdate()
    return _png(fig)


def write_outputs(out: str | Path, rows: list[dict[str, Any]], summary: SweepSummary, keys: list[str]) -> dict[str, str]:
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    frame = results_frame(rows, keys, summary.objective, summary.min_trades)
    files = {"results_parquet": d / "results.parquet", "results_csv": d / "results.csv",
             "heatmap_png": d / "heatmap.png", "oos_equity_png": d / "oos_equity.png", "summary_json": d / "summary.json"}
    frame.to_parquet(files["results_parquet"], index=False)
    frame.to_csv(files["results_csv"], index=False)
    files["heatmap_png"].write_bytes(heatmap_png(frame, summary))
    files["oos_equity_png"].write_bytes(oos_equity_png(rows, summary))
    summary.files = {k: str(v) for k, v in files.items()}
    files["summary_json"].write_text(summary.model_dump_json(indent=1))
    return summary.files
