"""Metrics over closed trades: hand-computed expectations on small journals."""
from __future__ import annotations

import math

import pytest

from core.domain.models import ClosedTrade, Direction
from core.store.metrics import bootstrap_mean_ci, compute_metrics, format_report, net_pnl


def _trade(i, pnl, r, *, strategy="bb_fade", session="london", commission=0.0, minutes=10.0,
           mfe=0.0, mae=0.0, direction=Direction.LONG, t0=1_700_000_000.0):
    entry = t0 + i * 3600
    return ClosedTrade(
        ticket=i, symbol="XAUUSDc", strategy=strategy, direction=direction, volume=0.01,
        entry_price=2000.0, exit_price=2000.0 + pnl, initial_sl=1995.0, tp=2010.0,
        entry_time=entry, exit_time=entry + minutes * 60, pnl=pnl, commission=commission,
        r_multiple=r, mfe_r=mfe, mae_r=mae, exit_reason="tp" if pnl > 0 else "sl", session=session,
    )


def test_empty_journal_gives_zero_counts_not_errors():
    rep = compute_metrics([])
    assert rep.trades == 0 and rep.overall.trades == 0
    assert rep.overall.win_rate is None and rep.expectancy_r_ci is None
    assert "net P&L" in format_report(rep)


def test_hand_computed_figures():
    trades = [
        _trade(0, 20.0, 2.0, commission=-1.0, mfe=2.5, mae=-0.3, minutes=30),
        _trade(1, -10.0, -1.0, commission=-1.0, mfe=0.4, mae=-1.0, minutes=10),
        _trade(2, -10.0, -1.0, commission=1.0, strategy="rsi_bounce", session="asian", minutes=20),
        _trade(3, 30.0, 3.0, strategy="rsi_bounce", session="asian", mfe=3.1, mae=-0.2, minutes=40),
    ]
    rep = compute_metrics(trades, starting_balance=1000.0, split_fraction=None, bootstrap_resamples=0)
    o = rep.overall
    # net = gross - |commission| whatever the sign convention
    assert [net_pnl(t) for t in trades] == [19.0, -11.0, -11.0, 30.0]
    assert o.trades == 4 and o.wins == 2 and o.losses == 2
    assert o.net_pnl == pytest.approx(27.0)
    assert o.win_rate == pytest.approx(0.5)
    assert o.avg_r == pytest.approx(0.75) and o.median_r == pytest.approx(0.5)
    assert o.expectancy_money == pytest.approx(27.0 / 4)
    assert o.profit_factor == pytest.approx(49.0 / 22.0)
    # equity 1000 -> 1019 -> 1008 -> 997 -> 1027: peak 1019, trough 997
    assert o.max_drawdown == pytest.approx(22.0)
    assert o.max_drawdown_pct == pytest.approx(100 * 22.0 / 1019.0)
    assert o.mfe_trades == 3 and o.avg_mfe_r == pytest.approx((2.5 + 0.4 + 3.1) / 3)
    assert o.avg_minutes_in_trade == pytest.approx(25.0) and o.median_minutes_in_trade == pytest.approx(25.0)
    assert set(rep.by_strategy) == {"bb_fade", "rsi_bounce"}
    assert rep.by_strategy["bb_fade"].net_pnl == pytest.approx(8.0)
    assert rep.by_session["asian"].trades == 2
    assert rep.equity == pytest.approx([1019.0, 1008.0, 997.0, 1027.0])
    assert rep.in_sample is None


def test_profit_factor_none_without_losses_and_json_round_trip():
    rep = compute_metrics([_trade(0, 5.0, 1.0), _trade(1, 7.0, 1.4)])
    assert rep.overall.profit_factor is None
    again = type(rep).model_validate_json(rep.model_dump_json())
    assert again == rep


def test_split_by_date():
    trades = [_trade(i, 1.0 if i % 2 else -1.0, 0.5 if i % 2 else -0.5) for i in range(10)]
    split = trades[6].entry_time
    rep = compute_metrics(trades, split_time=split)
    assert rep.in_sample.trades == 6 and rep.out_of_sample.trades == 4
    assert rep.in_sample.last_exit < rep.out_of_sample.first_entry


def test_bootstrap_is_seeded_and_brackets_the_mean():
    vals = [1.5, -1.0, -1.0, 2.0, 0.2, -0.5, 1.1, -1.0, 1.7, 0.3]
    a = bootstrap_mean_ci(vals, resamples=500, seed=3)
    b = bootstrap_mean_ci(vals, resamples=500, seed=3)
    c = bootstrap_mean_ci(vals, resamples=500, seed=4)
    assert a == b and (a.low, a.high) != (c.low, c.high)
    assert a.low < a.mean < a.high and a.trades == 10
    assert math.isclose(a.mean, sum(vals) / len(vals))
    # a wider confidence gives a wider interval
    w = bootstrap_mean_ci(vals, resamples=500, seed=3, confidence=0.99)
    assert w.low <= a.low and w.high >= a.high


def test_bootstrap_equals_a_fresh_draw_whatever_was_drawn_before():
    """The last resample draw is reused for the same (seed, n, resamples) when small (1,100 trades at 2,000
    resamples is not kept): every interval must still be the plain seeded bootstrap (a fresh generator, two
    quantile calls), in any order of asks."""
    import numpy as np

    def plain(vals, resamples, confidence, seed):
        v = np.asarray(vals, dtype=float)
        idx = np.random.default_rng(seed).integers(0, len(v), size=(resamples, len(v)))
        means = v[idx].mean(axis=1)
        alpha = (1.0 - confidence) / 2.0
        return float(np.quantile(means, alpha)), float(np.quantile(means, 1.0 - alpha))

    rng = np.random.default_rng(11)
    asks = [(n, res, conf, seed) for n in (2, 9, 9, 180, 1100) for res in (1, 500, 2000) for conf in (0.9, 0.95)
            for seed in (3, 7, 7)]
    rng.shuffle(asks)
    for n, res, conf, seed in asks + asks[::-1]:
        vals = rng.normal(size=n).tolist()
        ci = bootstrap_mean_ci(vals, resamples=res, confidence=conf, seed=seed)
        assert (ci.low, ci.high) == plain(vals, res, conf, seed), (n, res, conf, seed)
