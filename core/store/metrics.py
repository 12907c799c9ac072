"""Performance metrics over closed trades: one module for the live journal (`/metrics`) and backtests.

Why one module: if the live bot and the backtester computed "expectancy" in two places, the two would
drift and a backtest could no longer be compared with what the bot actually did. Everything here is a
pure function of a list of `ClosedTrade`s (plus an optional starting balance), so the same journal
always yields the same report.

Conventions (documented because the store and the backtester must agree on them):
- `ClosedTrade.pnl` is the gross profit of the closing deal(s) as the broker reports it (MT5 `profit`);
  `ClosedTrade.commission` is the commission paid, in either sign convention (MT5 reports costs as
  negative numbers). Net P&L of a trade is `pnl - abs(commission)`: a commission is always a cost.
- `ClosedTrade.r_multiple` is the realised move in units of initial risk, as recorded at close.
  A trade with no initial stop (`initial_sl` 0, e.g. an adopted orphan) or a stop at its entry has no
  risk, so no R: it counts in every money figure but in no R figure (`r_trades` is how many have one).
- Every block carries `trades` (its count) and every figure that is computed over a subset of trades
  carries its own count (`mfe_trades`, `wins`, ...): a 70 % win rate over 5 trades says nothing.
- Trades are ordered by `exit_time` for the equity curve and drawdown (P&L is realised at exit).
  Drawdown is measured on closed-trade equity from the starting balance (a first-trade loss is one);
  `max_drawdown` (money) and `max_drawdown_pct` (of the peak it fell from) are separate maxima and
  may come from different falls.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from core.domain.models import ClosedTrade


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BootstrapCI(_M):
    """Percentile bootstrap of the mean, resampling whole trades with replacement (seeded, repeatable)."""

    trades: int
    resamples: int
    confidence: float
    seed: int
    mean: float | None = None
    low: float | None = None
    high: float | None = None


class MetricsBlock(_M):
    trades: int = 0
    wins: int = 0
    losses: int = 0
    breakeven: int = 0
    win_rate: float | None = None
    net_pnl: float = 0.0
    gross_profit: float = 0.0
    gross_loss: float = 0.0
    commission: float = 0.0
    r_trades: int = 0
    avg_r: float | None = None
    median_r: float | None = None
    expectancy_r: float | None = None
    expectancy_money: float | None = None
    profit_factor: float | None = Field(default=None, description="None when there are no losing trades")
    avg_win_r: float | None = None
    avg_loss_r: float | None = None
    mfe_trades: int = 0
    avg_mfe_r: float | None = None
    avg_mae_r: float | None = None
    max_drawdown: float = 0.0
    max_drawdown_pct: float | None = None
    avg_minutes_in_trade: float | None = None
    median_minutes_in_trade: float | None = None
    total_minutes_in_trade: float = 0.0
    first_entry: float | None = None
    last_exit: float | None = None
    avg_risk_money_win: float | None = Field(default=None, description="money at the initial stop, mean over winners")
    avg_risk_money_loss: float | None = Field(default=None, description="money at the initial stop, mean over losers")


class MetricsReport(_M):
    trades: int
    starting_balance: float | None = None
    overall: MetricsBlock
    by_strategy: dict[str, MetricsBlock] = Field(default_factory=dict)
    by_session: dict[str, MetricsBlock] = Field(default_factory=dict)
    by_direction: dict[str, MetricsBlock] = Field(default_factory=dict)
    split_time: float | None = Field(default=None, description="in-sample = trades entered before this time")
    in_sample: MetricsBlock | None = None
    out_of_sample: MetricsBlock | None = None
    expectancy_r_ci: BootstrapCI | None = None
    expectancy_money_ci: BootstrapCI | None = None
    equity_times: list[float] = Field(default_factory=list)
    equity: list[float] = Field(default_factory=list)


def net_pnl(trade: ClosedTrade) -> float:
    return float(trade.pnl) - abs(float(trade.commission))


def _f(x: float) -> float:
    return float(x)


def has_r(trade: ClosedTrade) -> bool:
    """R exists only where there was an initial risk (see the module docstring)."""
    return trade.initial_sl > 0 and abs(trade.entry_price - trade.initial_sl) > 0


def risk_money(trade: ClosedTrade) -> float | None:
    """Money the trade stood to lose at its initial stop: the price risk at the trade's own money per price
    unit (pnl / price move, so lot and contract size are whatever the broker booked). None without R or
    when the trade closed at its entry price (no move to read the rate from)."""
    return _risk_money(trade, has_r(trade))


def _risk_money(trade: ClosedTrade, defined: bool) -> float | None:
    """`risk_money` for a trade whose `has_r` is `defined`."""
    move = trade.exit_price - trade.entry_price
    if not defined or move == 0:
        return None
    return abs(float(trade.pnl) / move) * abs(trade.entry_price - trade.initial_sl)


def _mean_or_none(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _block(trades: Sequence[ClosedTrade], starting_balance: float | None) -> MetricsBlock:
    n = len(trades)
    if n == 0:
        return MetricsBlock()
    ordered = sorted(trades, key=lambda t: (t.exit_time, t.ticket))
    # has_r once per trade: over the ~13 blocks of a report it was asked ~16 times per trade
    defined_l = [has_r(t) for t in ordered]
    net = np.array([net_pnl(t) for t in ordered], dtype=float)
    defined = np.array(defined_l, dtype=bool)
    r = np.array([t.r_multiple for t in ordered], dtype=float)
    rd = r[defined]
    minutes = np.array([max(0.0, t.exit_time - t.entry_time) / 60.0 for t in ordered], dtype=float)
    wins = net > 0
    losses = net < 0
    gross_profit = float(net[wins].sum())
    gross_loss = float(-net[losses].sum()) + 0.0  # + 0.0: no losses is 0.0, not -0.0
    # MFE/MAE are only meaningful where the recorder tracked them (a trade with both at 0 was not tracked).
    tracked = [t for t, d in zip(ordered, defined_l, strict=True) if d and (t.mfe_r != 0.0 or t.mae_r != 0.0)]
    risks = [_risk_money(t, d) for t, d in zip(ordered, defined_l, strict=True)]
    equity = np.cumsum(net)
    base = float(starting_balance) if starting_balance is not None else 0.0
    curve = base + np.concatenate([[0.0], equity])
    peaks = np.maximum.accumulate(curve)
    dd = peaks - curve
    max_dd = float(dd.max())
    max_dd_pct = None
    if starting_balance is not None and np.any(peaks > 0):
        # its own maximum: a 50 % fall from a small balance outweighs a larger sum lost from a high peak
        ok = peaks > 0
        max_dd_pct = float(100.0 * (dd[ok] / peaks[ok]).max())
    return MetricsBlock(
        trades=n,
        wins=int(wins.sum()),
        losses=int(losses.sum()),
        breakeven=int(n - wins.sum() - losses.sum()),
        win_rate=float(wins.sum()) / n,
        net_pnl=float(net.sum()),
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        commission=float(sum(abs(t.commission) for t in ordered)),
        r_trades=int(defined.sum()),
        avg_r=_f(rd.mean()) if len(rd) else None,
        median_r=_f(np.median(rd)) if len(rd) else None,
        expectancy_r=_f(rd.mean()) if len(rd) else None,
        expectancy_money=_f(net.mean()),
        profit_factor=(gross_profit / gross_loss) if gross_loss > 0 else None,
        avg_win_r=_f(r[wins & defined].mean()) if (wins & defined).any() else None,
        avg_loss_r=_f(r[losses & defined].mean()) if (losses & defined).any() else None,
        mfe_trades=len(tracked),
        avg_mfe_r=_f(np.mean([t.mfe_r for t in tracked])) if tracked else None,
        avg_mae_r=_f(np.mean([t.mae_r for t in tracked])) if tracked else None,
        max_drawdown=max_dd,
        max_drawdown_pct=max_dd_pct,
        avg_minutes_in_trade=_f(minutes.mean()),
        median_minutes_in_trade=_f(np.median(minutes)),
        total_minutes_in_trade=_f(minutes.sum()),
        first_entry=min(t.entry_time for t in ordered),
        last_exit=max(t.exit_time for t in ordered),
        avg_risk_money_win=_mean_or_none([x for x, w in zip(risks, wins.tolist(), strict=True)
                                          if w and x is not None]),
        avg_risk_money_loss=_mean_or_none([x for x, lo in zip(risks, losses.tolist(), strict=True)
                                           if lo and x is not None]),
    )


def bootstrap_mean_ci(
    values: Sequence[float], *, resamples: int = 2000, confidence: float = 0.95, seed: int = 7
) -> BootstrapCI:
    """Percentile CI of the mean. Seeded so the same journal always reports the same interval."""
    vals = np.asarray(values, dtype=float)
    ci = BootstrapCI(trades=len(vals), resamples=resamples, confidence=confidence, seed=seed)
    if len(vals) == 0:
        return ci
    ci.mean = float(vals.mean())
    if len(vals) < 2 or resamples <= 0:
        return ci
    means = vals[_resample_index(seed, len(vals), resamples)].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])  # one sort; the same values as two calls
    ci.low, ci.high = float(low), float(high)
    return ci


_last_index: tuple[tuple[int, int, int], np.ndarray] | None = None
_KEEP_BYTES = 16 << 20  # 1,000 trades at 2,000 resamples


def _resample_index(seed: int, n: int, resamples: int) -> np.ndarray:
    """The seeded draw of which trades each resample takes (read-only). A report bootstraps R and money
    over the same trades with the same seed, so the same draw: drawn once it is most of a report's cost
    (~1 ms of a backtest's ~6 ms of metrics). The last draw is kept, replaced whole (threads may share it),
    if small: a long journal's draw (8 bytes per trade per resample) is not held after its report."""
    global _last_index
    key = (seed, n, resamples)
    hit = _last_index
    if hit is not None and hit[0] == key:
        return hit[1]
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    idx.flags.writeable = False
    _last_index = (key, idx) if idx.nbytes <= _KEEP_BYTES else None
    return idx


def _group(trades: Iterable[ClosedTrade], key) -> dict[str, list[ClosedTrade]]:
    out: dict[str, list[ClosedTrade]] = {}
    for t in trades:
        out.setdefault(key(t) or "unknown", []).append(t)
    return dict(sorted(out.items()))


def compute_metrics(
    trades: Iterable[ClosedTrade],
    *,
    starting_balance: float | None = None,
    split_time: float | None = None,
    split_fraction: float | None = 0.7,
    bootstrap_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 7,
) -> MetricsReport:
    """Metrics for a journal of closed trades.

    The in-sample / out-of-sample split is by date: `split_time` if given, else the time at
    `split_fraction` of the span between the first entry and the last exit (None disables it).
    Splitting by date rather than by trade count is what makes it an honest walk-forward check.
    """
    items = sorted(trades, key=lambda t: (t.exit_time, t.ticket))
    report = MetricsReport(
        trades=len(items), starting_balance=starting_balance, overall=_block(items, starting_balance)
    )
    if not items:
        return report
    report.by_strategy = {k: _block(v, None) for k, v in _group(items, lambda t: t.strategy).items()}
    report.by_session = {k: _block(v, None) for k, v in _group(items, lambda t: t.session).items()}
    report.by_direction = {k: _block(v, None) for k, v in _group(items, lambda t: t.direction.value).items()}
    if split_time is None and split_fraction is not None:
        t0 = min(t.entry_time for t in items)
        t1 = max(t.exit_time for t in items)
        split_time = t0 + (t1 - t0) * float(split_fraction)
    if split_time is not None:
        report.split_time = float(split_time)
        report.in_sample = _block([t for t in items if t.entry_time < split_time], None)
        report.out_of_sample = _block([t for t in items if t.entry_time >= split_time], None)
    report.expectancy_r_ci = bootstrap_mean_ci(
        [t.r_multiple for t in items if has_r(t)], resamples=bootstrap_resamples, confidence=confidence, seed=seed
    )
    report.expectancy_money_ci = bootstrap_mean_ci(
        [net_pnl(t) for t in items], resamples=bootstrap_resamples, confidence=confidence, seed=seed
    )
    base = float(starting_balance) if starting_balance is not None else 0.0
    report.equity_times = [t.exit_time for t in items]
    report.equity = list(base + np.cumsum([net_pnl(t) for t in items]))
    return report


def _fmt(x: float | None, spec: str = ".2f") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return format(x, spec)


def profit_factor_text(block: MetricsBlock) -> str:
    """Winners and no loser: the ratio is unbounded, which '-' (no data) would hide."""
    if block.profit_factor is None and block.gross_profit > 0:
        return "no losses"
    return _fmt(block.profit_factor)


def block_rows(block: MetricsBlock) -> list[tuple[str, str, int]]:
    """(label, value, trade count) rows: the count sits next to every figure, as the issue asks."""
    n = block.trades
    nr = block.r_trades
    wr = None if block.win_rate is None else 100.0 * block.win_rate
    return [
        ("net P&L", _fmt(block.net_pnl), n),
        ("win rate %", _fmt(wr, ".1f"), n),
        ("avg R", _fmt(block.avg_r), nr),
        ("median R", _fmt(block.median_r), nr),
        ("expectancy R", _fmt(block.expectancy_r, ".3f"), nr),
        ("expectancy money", _fmt(block.expectancy_money), n),
        ("profit factor", profit_factor_text(block), n),
        ("avg MFE R", _fmt(block.avg_mfe_r), block.mfe_trades),
        ("avg MAE R", _fmt(block.avg_mae_r), block.mfe_trades),
        ("max drawdown", _fmt(block.max_drawdown), n),
        ("max drawdown % of peak", _fmt(block.max_drawdown_pct), n),
        ("avg minutes in trade", _fmt(block.avg_minutes_in_trade, ".1f"), n),
        ("commission", _fmt(block.commission), n),
    ]


def r_count_note(block: MetricsBlock) -> str:
    """The R figures' own count, when some trades of the block have no R."""
    return "" if block.r_trades == block.trades else f" (R over n={block.r_trades})"


def format_report(report: MetricsReport) -> str:
    """A plain-text summary for chat and logs (monospace-friendly, no rich markup)."""
    lines = [f"{'metric':<22}{'value':>14}{'n':>7}"]
    for label, value, n in block_rows(report.overall):
        lines.append(f"{label:<22}{value:>14}{n:>7}")
    for title, ci in (("expectancy R", report.expectancy_r_ci), ("expectancy money", report.expectancy_money_ci)):
        if ci and ci.low is not None:
            lines.append(
                f"{title} {int(ci.confidence * 100)}% CI [{_fmt(ci.low, '.3f')}, {_fmt(ci.high, '.3f')}] "
                f"n={ci.trades} ({ci.resamples} resamples)"
            )
    for name, groups in (("strategy", report.by_strategy), ("session", report.by_session)):
        for key, b in groups.items():
            lines.append(
                f"{name} {key}: n={b.trades} net={_fmt(b.net_pnl)} win%={_fmt((b.win_rate or 0) * 100, '.1f')} "
                f"expR={_fmt(b.expectancy_r, '.3f')}{r_count_note(b)}"
            )
    for label, b in (("in-sample", report.in_sample), ("out-of-sample", report.out_of_sample)):
        if b is not None:
            lines.append(f"{label}: n={b.trades} net={_fmt(b.net_pnl)} expR={_fmt(b.expectancy_r, '.3f')}{r_count_note(b)}")
    return "\n".join(lines)

