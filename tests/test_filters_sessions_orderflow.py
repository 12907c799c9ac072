"""DST-correct session windows and the order-flow source (real Binance/freqtrade trade prints)."""
from __future__ import annotations

import pytest
from analysis_helpers import app, ts

from core.config.paths import market_data_dir
from core.data.sources.orderflow import imbalance, load_snapshot
from core.data.trades import load_trades
from core.domain.sessions import active_sessions, session_label, window_containing_or_before

S = app().sessions


@pytest.mark.parametrize("day,london,new_york", [
    ("2025-01-15", "08:00", "13:00"),  # both on winter time
    ("2025-03-12", "08:00", "12:00"),  # US already on DST, UK not yet: the gap weeks
    ("2025-04-02", "07:00", "12:00"),  # both on summer time
    ("2025-10-29", "08:00", "12:00"),  # UK back on GMT, US still on EDT
])
def test_session_opens_move_with_each_zone_dst(day, london, new_york):
    lon = window_containing_or_before("london", S.definitions["london"], ts(f"{day}T12:00"))
    ny = window_containing_or_before("new_york", S.definitions["new_york"], ts(f"{day}T18:00"))
    assert lon.start == ts(f"{day}T{london}")
    assert ny.start == ts(f"{day}T{new_york}")
    assert lon.end - lon.start == 8.5 * 3600 and ny.end - ny.start == 9 * 3600


def test_active_sessions_and_labels():
    assert [w.name for w in active_sessions(S, ts("2025-06-03T03:00"))] == ["asian"]
    assert session_label(S, ts("2025-06-03T13:00")) == "london+new_york"
    assert session_label(S, ts("2025-06-03T22:30")) == "off_hours"


def test_window_before_returns_the_latest_past_session():
    w = window_containing_or_before("asian", S.definitions["asian"], ts("2025-06-03T20:00"))
    assert w.start == ts("2025-06-03T00:00") and not w.contains(ts("2025-06-03T20:00"))


def test_orderflow_imbalance_on_real_binance_prints():
    trades = load_trades(market_data_dir() / "nautechsystems__nautilus_trader/tests/test_data/binance/btcusdt-trades.parquet")
    end = float(trades["time"][-1])
    snap = imbalance(trades, end, 60.0)
    buy = float(trades["qty"][trades["side"] > 0].sum())
    sell = float(trades["qty"][trades["side"] < 0].sum())
    assert snap.n_trades == len(trades)
    assert snap.buy_volume == pytest.approx(buy) and snap.sell_volume == pytest.approx(sell)
    assert snap.imbalance == pytest.approx((buy - sell) / (buy + sell))
    assert snap.timestamp == end


def test_orderflow_uses_no_prints_after_now():
    path = market_data_dir() / "freqtrade__freqtrade/tests/testdata/orderflow/public_trades_list.csv"
    trades = load_trades(path)
    mid = float(trades["time"][500])
    snap = load_snapshot(path, mid, window_seconds=30.0)
    assert snap.timestamp <= mid and snap.n_trades <= 501
    assert imbalance(trades, float(trades["time"][0]) - 1, 30.0) is None
