"""Cross-check: the backtest's own orders replayed through backtesting.py give the same fills."""
from __future__ import annotations

import pytest

from core.backtest.engine import BacktestEngine, BacktestSpec
from core.backtest.peer import compare, cost_free_exit_bar, run_peer
from core.config.loading import load_config
from core.config.model import AppConfig, deep_merge
from core.config.paths import market_data_dir
from core.data.loaders import load_candles
from tests.backtest_probe import edge_fade

XAU = market_data_dir() / "budimanlai__forex-tick" / "data" / "XAUUSD_M5.csv"


@pytest.fixture(scope="module")
def xau():
    return load_candles(XAU, tz_offset_hours=2)[:5000]


def _zero_cost_cfg() -> AppConfig:
    raw = deep_merge(load_config().model_dump(mode="json"), {
        "broker": {"paper": {"slippage_points": 0, "commission_per_lot": 0}},
        "symbols": {"XAUUSDc": {"default_spread_points": 0, "stops_level_points": 0}},
    })
    return AppConfig.model_validate(raw)


def _run(cfg, candles, analyse_fn=edge_fade):
    return BacktestEngine(cfg, BacktestSpec(symbol="XAUUSDc", candles=candles), analyse_fn=analyse_fn).run()


def test_zero_cost_fills_agree_with_backtesting_py(xau):
    c = xau.copy()
    c["spread"] = 0
    rep = _run(_zero_cost_cfg(), c)
    filled = [s for s in rep.signals if s.entry_bar is not None]
    assert len(filled) >= 20
    kinds = {s.exit_reason for s in filled}
    assert {"stop_loss", "take_profit"} <= kinds  # broker-side exits
    assert any(s.close_request_bar is not None for s in filled)  # exit-manager closes too
    assert any(s.stop_moves for s in filled)  # and breakeven stop moves
    peer = run_peer(c, rep.signals)
    assert len(peer.trades) == len(filled)
    assert compare(rep.signals, peer, c) == []
    # and the backtest's ClosedTrades are the fills it reported as signals
    by_ticket = {t.ticket: t for t in rep.trades}
    for s in filled:
        t = by_ticket[s.ticket]
        assert (t.entry_price, t.exit_price) == (s.entry_price, s.exit_price)


def test_with_costs_differences_are_exactly_spread_and_slippage(xau):
    cfg = load_config()
    rep = _run(cfg, xau)
    peer = run_peer(xau, rep.signals)
    point = cfg.symbols["XAUUSDc"].point
    slip = cfg.broker.paper.slippage_points * point
    assert slip > 0 and rep.costs["slippage_points"] > 0
    by_tag = {int(r.Tag): r for r in peer.trades.itertuples()}
    checked = 0
    for s in rep.signals:
        if s.entry_bar is None:
            continue
        r = by_tag[s.id]
        assert int(r.EntryBar) == s.entry_bar  # same bar: next open after the decision
        bar = xau[s.entry_bar]
        spread = (int(bar["spread"]) or cfg.symbols["XAUUSDc"].default_spread_points) * point
        # PaperBroker: buy at ask + slippage, sell at bid - slippage; peer: the bar open (bid)
        expected = r.EntryPrice + spread + slip if s.side == "buy" else r.EntryPrice - slip
        assert s.entry_price == pytest.approx(expected, abs=1e-6)
        checked += 1
    assert checked >= 20
    # exits: every bar disagreement is the spread (rule 5): the broker's own stop rule re-run cost-free
    # lands on the peer's bar
    peer_exit = {int(r.Tag): int(r.ExitBar) for r in peer.trades.itertuples()}
    by_id = {s.id: s for s in rep.signals}
    bar_diffs = [m for m in compare(rep.signals, peer, xau) if m.field.endswith("_bar") or m.field == "missing"]
    assert bar_diffs and all(m.field == "exit_bar" for m in bar_diffs)
    assert all(cost_free_exit_bar(by_id[m.signal_id], xau) == peer_exit[m.signal_id] for m in bar_diffs)
