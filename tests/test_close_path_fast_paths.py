"""The close path's and the replay glue's fast paths give what the slow paths they replace give."""
from __future__ import annotations

import pytest

from core.backtest.api import load_series
from core.backtest.engine import BacktestEngine, BacktestSpec
from core.backtest.live import LiveParts, ManageAction
from core.config.loading import load_config
from core.config.paths import market_data_dir
from core.domain.models import ActiveTrade, Direction
from core.exits.manager import RangeScalpingExitManager

EUR = market_data_dir() / "01Javier__trading-eurusd" / "data" / "EURUSD_M5.csv"


@pytest.fixture(scope="module")
def cfg():
    return load_config()


@pytest.fixture(scope="module")
def eur(cfg):
    return load_series(cfg, "EURUSDc", EUR)[:8000]


def _trade(ticket: int, sl: float = 0.99) -> ActiveTrade:
    return ActiveTrade(ticket=ticket, proposal_id=f"p{ticket}", symbol="EURUSDc", strategy="s", direction=Direction.LONG,
                       volume=0.01, entry_price=1.0, sl=sl, tp=1.02, initial_sl=sl, entry_time=0.0,
                       magic=1)


def test_stops_version_moves_with_every_sl_change_and_only_then():
    ex = RangeScalpingExitManager()
    v = ex.stops_version
    ex.register_trade(_trade(1))
    assert ex.stops_version > v
    v = ex.stops_version
    ex.update_trade_state(1, {"mfe_r": 0.5, "mae_r": -0.1})
    ex.update_trade_state(1, {"sl": 0.99})  # the same SL: no move
    assert ex.stops_version == v
    ex.update_trade_state(1, {"sl": 1.0, "breakeven_moved": True})
    assert ex.stops_version == v + 1
    ex.sync_stops(1, 1.001, 1.02)  # the broker's stop adopted
    assert ex.stops_version == v + 2
    ex.update_many({1: lambda t: {"sl": t.sl + 0.001}})
    assert ex.stops_version == v + 3
    ex.update_trade_state(1, {"sl": float("nan")})
    ex.update_trade_state(1, {"sl": float("nan")})  # NaN != NaN: counted as moved, the slow path decides
    assert ex.stops_version == v + 5
    ex.load([_trade(1)])
    assert ex.stops_version == v + 6
    ex.unregister_trade(1)  # a closed trade is never in a cycle's `after`
    assert ex.stops_version == v + 6


def test_manage_reports_the_stop_moves_fresh_snapshots_find(cfg, eur, monkeypatch):
    """Every cycle of a real run: the actions equal those of comparing fresh before/after lists."""
    fast = LiveParts.manage
    cycles = moves = 0

    def checked(self, now):
        nonlocal cycles, moves
        before = {t.ticket: t.sl for t in self.exits.active_trades()}
        got = fast(self, now)
        want = [ManageAction(t.ticket, "move_sl", "breakeven" if t.breakeven_moved else "sl_moved", t.sl)
                for t in self.exits.active_trades() if before.get(t.ticket) is not None and t.sl != before[t.ticket]]
        assert got == want
        cycles += 1
        moves += len(got)
        return got

    monkeypatch.setattr(LiveParts, "manage", checked)
    rep = BacktestEngine(cfg, BacktestSpec("EURUSDc", eur)).run()
    assert len(rep.trades) >= 5 and cycles > 50 and moves >= 1
    assert sum(len(s.stop_moves) for s in rep.signals) == moves


if __name__ == "__main__":
    pytest.main([__file__])


@pytest.mark.parametrize("dtype", ["<i8", "<f8", ">i8", "<i4"])
def test_bar_times_read_as_the_list_of_times(dtype):
    from bisect import bisect_right

    import numpy as np

    from core.backtest.engine import _bar_times

    rows = np.zeros(50, dtype=[("time", dtype), ("open", "<f8")])
    rows["time"] = np.arange(50) * 300 + 1_700_000_000 % 10_000
    want = rows["time"].tolist()
    got = _bar_times(rows)
    assert [got[i] for i in range(len(got))] == want and len(got) == len(want)
    assert [type(got[i]) for i in range(len(got))] == [type(x) for x in want]
    for t in [-1, 0, 299.5, 300, 300.0, 7000.25, 1e12, *want]:
        assert bisect_right(got, t) == bisect_right(want, t)


def _report_facts(rep) -> tuple:
    """Everything a report says about the trades and signals, but the random proposal ids and the timings."""
    trades = [t.model_dump(exclude={"proposal_id"}) for t in rep.trades]
    signals = [s.model_dump() for s in rep.signals]
    return trades, signals, rep.metrics.model_dump(), rep.open_at_end


def test_reading_the_journal_once_after_the_run_gives_what_a_read_after_every_cycle_gave(cfg, eur, monkeypatch):
    """The engine collects the closes once, after the last bar. The reference is the read it replaced: around
    every monitor cycle, whenever `closes_recorded` moved (every close collected within the cycle it was
    journalled in, its signal updated there). The trades, the signals and the metrics are the same."""
    real_manage, real_collect = BacktestEngine._manage_open, LiveParts.collect_closed
    reads = []

    def collect(self):
        out = real_collect(self)
        reads.append(len(out))
        return out

    monkeypatch.setattr(LiveParts, "collect_closed", collect)
    once = BacktestEngine(cfg, BacktestSpec("EURUSDc", eur))
    got = _report_facts(once.run())
    assert len(reads) == 1 and reads[0] == len(got[0]) >= 5
    assert [(t.exit_time, t.ticket) for t in once.closed] == sorted((t.exit_time, t.ticket) for t in once.closed)

    def manage_open(self, i, now):  # the collects the loop made before
        ex, parts = self.parts.exit_executor, self.parts
        if ex.closes_recorded != parts.closes_seen:
            self._sync_closed()
        real_manage(self, i, now)
        if ex.closes_recorded != parts.closes_seen:
            self._sync_closed()

    reads.clear()
    monkeypatch.setattr(BacktestEngine, "_manage_open", manage_open)
    per_cycle = BacktestEngine(cfg, BacktestSpec("EURUSDc", eur))
    want = _report_facts(per_cycle.run())
    assert len(reads) > 5 and sum(reads) == len(want[0])  # many reads, every close read once
    assert got == want
