"""What /metrics and /backtest say about drawdown, profit factor and R counts.

- The money and % drawdown maxima can come from different falls (the % is of its own peak since
  core.store.metrics fixed it), so "X (Y%)" would claim they are one fall.
- Winners only: the profit factor is unbounded, and "-" reads as "no data".
- A trade without a stop (an adopted orphan) has no R: R figures rest on fewer trades than money ones.
"""
from __future__ import annotations

from types import SimpleNamespace

from bot.backtest_command import backtest_summary
from bot.trade_reports import metrics_text
from core.store.metrics import compute_metrics
from tests.store_helpers import T0, make_closed, make_trade


def _trades():
    a = make_closed(make_trade(1), exit_price=100.05, exit_time=T0 + 600)
    b = make_closed(make_trade(2), exit_price=100.30, exit_time=T0 + 1200)
    orphan = make_trade(3).model_copy(update={"initial_sl": 0.0, "sl": 0.0})
    c = make_closed(orphan, exit_price=99.90, exit_time=T0 + 1800).model_copy(update={"r_multiple": 0.0})
    return [a, b, c]


def test_metrics_card_wording():
    report = compute_metrics(_trades(), starting_balance=1000.0, bootstrap_resamples=50)
    o = report.overall
    assert o.trades == 3 and o.r_trades == 2 and o.profit_factor is None and o.gross_profit > 0
    text = metrics_text(report, None, currency="USD")
    assert "(R over 2)" in text
    assert "% of peak" in text and "max drawdown" in text and "%)" not in text


def test_backtest_summary_wording():
    m = compute_metrics(_trades(), starting_balance=1000.0, bootstrap_resamples=50)
    rep = SimpleNamespace(metrics=m, symbol="XAUUSDc", timeframe="M5", strategy_mode="auto", start=T0,
                          end=T0 + 3600, bars=12, starting_balance=1000.0, final_balance=1000.0 + m.overall.net_pnl,
                          open_at_end=0)
    text = backtest_summary(rep, None)
    assert "profit factor no losses (n=3)" in text
    assert "Expectancy" in text and "R (n=2)" in text  # R rests on the two trades with a stop
    assert "% of peak" in text


def test_backtest_money_carries_the_account_currency():
    """On a cent account 5.56 means cents: every money figure says its unit, as /metrics does."""
    m = compute_metrics(_trades(), starting_balance=1000.0, bootstrap_resamples=50)
    rep = SimpleNamespace(metrics=m, symbol="XAUUSDc", timeframe="M5", strategy_mode="auto", start=T0,
                          end=T0 + 3600, bars=12, starting_balance=1000.0, final_balance=1000.0 + m.overall.net_pnl,
                          open_at_end=0, currency="USC")
    text = backtest_summary(rep, None)
    net = next(ln for ln in text.splitlines() if ln.startswith("Net P&L"))
    assert net.startswith(f"Net P&L {m.overall.net_pnl:+.2f} USC") and net.endswith(" USC")
    assert "/trade" in text and " USC/trade" in text
    assert next(ln for ln in text.splitlines() if ln.startswith("Max drawdown")).split(" · ")[0].endswith(" USC")


def test_r_is_written_the_same_way_as_on_the_alert_pages():
    """The close page and /status say '-1.01 R'; /metrics and /backtest said '-1.01R'."""
    import re

    m = compute_metrics(_trades(), starting_balance=1000.0, bootstrap_resamples=50)
    rep = SimpleNamespace(metrics=m, symbol="XAUUSDc", timeframe="M5", strategy_mode="auto", start=T0,
                          end=T0 + 3600, bars=12, starting_balance=1000.0, final_balance=1000.0 + m.overall.net_pnl,
                          open_at_end=0, currency="USD")
    for text in (metrics_text(m, None, currency="USD"), backtest_summary(rep, None)):
        assert re.search(r"[+-]\d+\.\d+ R\b", text), text
        assert not re.search(r"\dR\b", text), text


def _summary(trades, split_time=None) -> str:
    m = compute_metrics(trades, starting_balance=1000.0, bootstrap_resamples=50, split_time=split_time)
    rep = SimpleNamespace(metrics=m, symbol="XAUUSDc", timeframe="M5", strategy_mode="auto", start=T0,
                          end=T0 + 86400, bars=288, starting_balance=1000.0, final_balance=1000.0 + m.overall.net_pnl,
                          open_at_end=0, currency="USD")
    return backtest_summary(rep, None)


def _series(n: int) -> list:
    """n one-lot trades, ten minutes apart: every third one stopped out (-1 R), the others at target (+1.5 R)."""
    out = []
    for i in range(1, n + 1):
        t = make_trade(i).model_copy(update={"volume": 1.0, "entry_time": T0 + 600 * i})
        out.append(make_closed(t, exit_price=100.05 if i % 3 else 98.8, exit_time=T0 + 600 * i + 300))
    return out


def test_the_chat_backtest_says_too_few_trades_where_the_cli_table_does():
    """Issue 17: an out-of-sample split with n = 2 was printed as if it meant something; the CLI table said
    "too few trades", the chat summary did not. Same threshold (core.backtest.report.MIN_TRADES) in both."""
    from core.backtest.report import MIN_TRADES

    text = _summary(_series(5), split_time=T0 + 600 * 3.5)
    split = next(ln for ln in text.splitlines() if ln.startswith("Split: "))
    assert split == "Split: in-sample +0.667 R (n=3, too few trades) · out-of-sample +1.500 R (n=2, too few trades)"
    assert "(n=5, too few trades)" in next(ln for ln in text.splitlines() if ln.startswith(" • vwap_reversion"))
    assert text.splitlines()[-1].startswith(f"⚠️ Fewer than {MIN_TRADES} trades: too few to judge")
    # why money and R can disagree: the money at the initial stop, for winners and losers apart, with counts
    risk = next(ln for ln in text.splitlines() if ln.startswith("Avg risk at the stop: "))
    assert risk == "Avg risk at the stop: winners 0.50 USD (n=4) · losers 0.50 USD (n=1)", risk

    text = _summary(_series(2 * MIN_TRADES + 2), split_time=T0 + 600 * (MIN_TRADES + 1.5))
    assert "too few" not in text, text
    assert f"Split: in-sample +0.667 R (n={MIN_TRADES + 1}) · out-of-sample " in text, text
