"""Shared helpers for the broker tests: real XAUUSD data, symbol specs and a paper broker factory."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.brokers.paper.store import _DEAL_COLS
from core.config.market import SymbolSpec
from core.config.paths import market_data_dir

XAU_M5 = "budimanlai__forex-tick/data/XAUUSD_M5.csv"
XAU_OFFSET_HOURS = 2.0  # config/range_scalping.json: XAUUSDc data_tz_offset_hours


def xau_spec(**over) -> SymbolSpec:
    base = dict(digits=2, point=0.01, contract_size=100, volume_min=0.01, volume_step=0.01,
                stops_level_points=20, default_spread_points=20)
    return SymbolSpec(**{**base, **over})


def load_xau_m5() -> np.ndarray:
    path = Path(market_data_dir()) / XAU_M5
    if not path.exists():
        pytest.fail(f"real market data missing: {path} (the shared data must sit at ../shared/data/market)")
    from core.data.loaders import load_candles

    return load_candles(path, tz_offset_hours=XAU_OFFSET_HOURS)


def deal_row(broker, ticket: int) -> tuple[tuple | None, tuple | None]:
    """A paper deal's stored row and its SQLite column types, in `Deal`'s column order ((None, None): no row)."""
    conn = broker.store._conn
    cols = ",".join(f'"{c}"' for c in _DEAL_COLS)
    typeofs = ",".join(f'typeof("{c}")' for c in _DEAL_COLS)
    row = conn.execute(f"SELECT {cols} FROM deals WHERE ticket=?", (ticket,)).fetchone()
    types = conn.execute(f"SELECT {typeofs} FROM deals WHERE ticket=?", (ticket,)).fetchone()
    return None if row is None else tuple(row), None if types is None else tuple(types)


def opened_xau(tmp_path, side: str, commission: float, comment: str = "rs:abc:bb_fade", sl_pts: float = 10.0,
               tp_pts: float = 10.0):
    """A paper broker on real XAUUSD bars with one 0.02-lot market order filled: (broker, clock, request, result)."""
    import lifecycle_helpers as k

    from core.brokers.base import OrderRequest
    from core.domain.clock import FixedClock

    cfg = k.config()
    bars = k.m5(cfg)
    clock = FixedClock(float(bars["time"][500]) + 600)
    broker = k.paper_broker(cfg, tmp_path / "p.sqlite", clock, commission_per_lot=commission)
    q = broker.tick("XAUUSDc")
    sign = 1 if side == "buy" else -1
    req = OrderRequest(symbol="XAUUSDc", side=side, volume=0.02, sl=round(q.bid - sign * sl_pts, 2),
                       tp=round(q.bid + sign * tp_pts, 2), price=q.ask if side == "buy" else q.bid, magic=77,
                       comment=comment)
    return broker, clock, req, broker.market_order(req)
