"""The active-trade repo writes exactly `trade.to_json()`, though it reuses a range's JSON while a trade keeps
its range object (`ActiveTradeRepo.to_json`): on every save of a real backtest, on odd values and texts,
and after a trade gets a new range (the reused text would then be stale)."""
from __future__ import annotations

import math
import typing

import lifecycle_helpers as k
import pytest

from core.backtest.api import load_series
from core.backtest.engine import BacktestEngine, BacktestSpec
from core.config.loading import load_config
from core.config.paths import market_data_dir
from core.domain.models import ActiveTrade, Direction
from core.store import Store
from core.store import trades as trades_mod
from core.store.trades import ActiveTradeRepo

EUR = market_data_dir() / "01Javier__trading-eurusd" / "data" / "EURUSD_M5.csv"


def _stored(store: Store, ticket: int) -> str:
    return store.db.conn.execute("SELECT data FROM active_trades WHERE ticket=?", (ticket,)).fetchone()[0]


def _trade(ticket: int = 7, **upd) -> ActiveTrade:
    bars = k.m5(k.config())[:400]
    rng = k.range_of("EURUSDc", bars[100:148], 0.0012)
    t = ActiveTrade(ticket=ticket, proposal_id="p1", symbol="EURUSDc", strategy="fade", direction=Direction.LONG,
                    entry_price=1.1, sl=1.09, tp=1.12, initial_sl=1.09, volume=0.1, entry_time=1.7e9, range_data=rng)
    return t.model_copy(update=upd)


def test_the_fields_before_the_range_are_scalars_and_the_range_is_followed_by_the_state():
    fields = list(ActiveTrade.model_fields)
    i = fields.index("range_data")
    assert fields[i + 1] == "exit_manager_state" and trades_mod._SPLICE
    hints = typing.get_type_hints(ActiveTrade)
    for name in fields[:i]:
        assert hints[name] in (int, float, str, str | None, Direction), name


def test_every_save_of_a_real_backtest_writes_the_full_dump(monkeypatch):
    seen = {"calls": 0, "reused": 0}
    real = ActiveTradeRepo.to_json

    def checked(self, trade):
        hit = self._range_json.get(trade.ticket)
        seen["reused"] += hit is not None and hit[0] is trade.range_data
        out = real(self, trade)
        assert out == trade.to_json()
        seen["calls"] += 1
        return out

    monkeypatch.setattr(ActiveTradeRepo, "to_json", checked)
    cfg = load_config()
    c = load_series(cfg, "EURUSDc", EUR)[:6000]
    rep = BacktestEngine(cfg, BacktestSpec("EURUSDc", c)).run()
    assert len(rep.trades) >= 5 and seen["reused"] >= len(rep.trades)
    assert seen["calls"] > seen["reused"]


@pytest.mark.parametrize("upd", [
    {},
    {"symbol": 'a,"exit_manager_state":"x', "strategy": '\\",'},
    {"proposal_id": None, "metadata": {"exit_manager_state": 1, "range_data": None, "x": [float("nan")]}},
    {"mfe_r": float("inf"), "mae_r": -float("inf"), "last_range_check": float("nan")},
    {"exit_manager_state": "exiting", "breakeven_moved": True, "comment": ',"exit_manager_state":'},
])
def test_odd_values_and_texts_give_the_full_dump(tmp_path, upd):
    store = Store(tmp_path / "s.sqlite")
    t = store.trades.add(_trade(**upd))
    assert _stored(store, t.ticket) == t.to_json()
    for i in range(3):
        t = store.trades.save(t.model_copy(update={"mfe_r": 0.1 * i, "version": t.version}))
        assert _stored(store, t.ticket) == t.to_json()
    odd = t.range_data.model_copy(update={"atr": math.nan, "range_high": math.inf,
                                          "nested_ranges": {'"exit_manager_state":': t.range_data}})
    t = store.trades.save(t.model_copy(update={"range_data": odd}))
    assert _stored(store, t.ticket) == t.to_json()
    store.close()


def test_a_new_range_is_written_not_the_remembered_one(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    t = store.trades.add(_trade())
    t = store.trades.save(t.model_copy(update={"mfe_r": 0.3}))  # remembered range
    wider = t.range_data.model_copy(update={"range_high": t.range_data.range_high + 1.0})
    t = store.trades.save(t.model_copy(update={"range_data": wider}))
    assert _stored(store, t.ticket) == t.to_json()
    assert ActiveTrade.from_json(_stored(store, t.ticket)).range_data.range_high == wider.range_high
    t = store.trades.save(t.model_copy(update={"range_data": None}))
    assert _stored(store, t.ticket) == t.to_json()
    # a removed ticket forgets its range; a new trade under that ticket writes its own
    store.trades.remove(t.ticket)
    assert t.ticket not in store.trades._range_json
    other = store.trades.add(_trade(ticket=t.ticket, symbol="XAUUSDc"))
    assert _stored(store, other.ticket) == other.to_json()
    store.close()


def test_a_range_cannot_be_edited_in_place():
    """The remembered JSON is keyed by the range object: an in-place edit would go unsaved, so it must fail."""
    from pydantic import ValidationError

    rng = _trade().range_data
    for obj, name, value in ((rng, "range_high", 2.0), (rng.critical_gaps, "upper_zone_start", 2.0),
                             (rng.touch_count, "top", 9)):
        with pytest.raises(ValidationError, match="frozen"):
            setattr(obj, name, value)
    assert rng.model_copy(update={"range_high": 2.0}).range_high == 2.0  # a new range is a new object
