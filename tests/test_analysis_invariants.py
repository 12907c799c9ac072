"""Every setup the analysis shows a trader is sane, on real bars of every configured symbol.

A trader approves a proposal with one tap, so a stop on the wrong side, a target beyond the box or a
"tradeable" verdict with a failed filter is money lost. These invariants are checked on:

* a few hundred deterministic (fixed seed) bar times per symbol, through `moneybot analyse --at`'s
  historical path (the configured files, no quote: entries at the last close), and the same bars
  again with a live quote as PaperBroker gives it (entries at the ask / bid);
* every analysis the backtest engine runs over the whole configured M5 file (live path: a PaperBroker
  quote, so long entries at the ask and shorts at the bid). That is where the rare *passing* results
  are, and they are the ones that become proposals;
* the historical path again at each of the engine's decision times (native M15/H1 files, no quote).

The rules tested are the code's intended ones (see core/scoring/strategies.py and scorer.py):
stops sit beyond both the faded edge and the bar's extreme by the stop buffer (touch tolerance +
invalidation buffer, in primary-timeframe ATR); targets stay inside the box; critical zones are the
outer `critical_zone_fraction` of the box plus `outside_buffer_atr` × the range's ATR beyond the edge.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from analysis_helpers import SYMBOLS, app, bar_close, candles, run

import core.analysis.facade as analysis_mod
from core.analysis.facade import window_sizes
from core.analysis.range.bars import Bars
from core.analysis.range.lastvalues import atr_last
from core.backtest.engine import BacktestEngine, BacktestSpec
from core.brokers.base import Tick
from core.domain.models import AnalysisResult, Direction
from core.domain.timeframes import Timeframe

RANDOM_BARS = 250  # per symbol, historical path
SEED = 20261125


def _stamp(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


def _on_grid(x: float, digits: int) -> bool:
    v = x * 10.0**digits
    return math.isfinite(x) and abs(v - round(v)) <= 1e-6 * max(1.0, abs(v)) ** 0.5


def _primary(symbol: str, now: float, primary: np.ndarray | None = None) -> tuple[float, float, float]:
    """(ATR, last high, last low) of the primary window the analysis read at `now`, recomputed here
    from the raw M5 bars: the stop buffer is in this ATR and the stop is beyond this bar's extreme."""
    tcfg = app().for_symbol(symbol)
    tf = tcfg.range_detection.timeframe
    src = candles(symbol)[tf] if primary is None else primary
    b = Bars.closed_window(src, tf, now, window_sizes(tcfg)[tf])
    atr = atr_last(b.high, b.low, b.close, tcfg.effective_atr.atr_period)
    return atr, float(b.high[-1]), float(b.low[-1])


def violations(symbol: str, r: AnalysisResult, primary: np.ndarray | None = None) -> list[str]:
    """Every broken invariant of one result, each a line naming symbol, bar time and the numbers
    (`primary`: the primary-timeframe bars analysed, when not the configured file)."""
    cfg = app()
    tcfg, spec = cfg.for_symbol(symbol), cfg.symbols[symbol]
    d, p = spec.digits, spec.point
    now = r.data_timestamps.get("now", r.as_of)
    where = f"{symbol} @ {_stamp(r.as_of)}"
    out: list[str] = []

    def bad(msg: str) -> None:
        out.append(f"{where}: {msg}")

    # -- verdict ---------------------------------------------------------------------------------
    if not (0.0 <= r.confidence <= 100.0):
        bad(f"confidence {r.confidence} outside 0-100")
    failures = [f for f in r.filters if not f.passed and f.blocking]
    for f in r.filters:
        if not f.reason.strip():
            bad(f"filter {f.name} (passed={f.passed}) has no reason text")
    if r.passed:
        if failures:
            bad(f"passed with blocking failures {[f.name for f in failures]}")
        top = r.top
        if top is None or not r.strategies[0].viable:
            bad(f"passed but the first listed strategy is not viable: {[(s.strategy, s.viable) for s in r.strategies]}")
        if top is not None and top.score < tcfg.entry_filters.min_strategy_score:
            bad(f"passed with top score {top.score} < minimum {tcfg.entry_filters.min_strategy_score}")
        rng = r.range
        lim = tcfg.range_width
        if rng is None or not rng.validated or not (lim.min_pct <= rng.range_width_pct <= lim.max_pct):
            bad(f"passed on a range that is missing, untested or outside {lim.min_pct}-{lim.max_pct}% wide: "
                f"{rng and (rng.validated, rng.range_width_pct)}")
        elif any("broken" in x for x in rng.invalidation_signals):
            bad(f"passed on a broken range: {rng.invalidation_signals}")
    else:
        if r.confidence > 40.0:
            bad(f"blocked but confidence {r.confidence} > 40")
        readable = [f.reason for f in failures if f.reason.strip()]
        if not failures:  # nothing blocked: the reason is the strategies' own, or the 'no setup' warning
            readable = [s.reason for s in r.strategies if not s.viable and s.reason.strip()] or \
                [w for w in r.warnings if w.strip()]
        if not readable:
            bad("blocked with no reason a trader can read")
    late = {k: v for k, v in r.data_timestamps.items() if k.startswith("candles_") and v > now}
    if late or r.as_of > now:
        bad(f"data from after the analysis time {_stamp(now)}: as_of {_stamp(r.as_of)}, {late}")
    conf = next((f for f in r.filters if f.name == "confluence"), None)
    if conf is not None and abs(conf.details.get("score", r.confluence_score) - r.confluence_score) > 0.01:
        bad(f"confluence filter says {conf.details.get('score')} but the result says {r.confluence_score}")
    if r.range is None and r.no_range is None:
        bad("neither a range nor a no-range reason")
    if r.range is None and r.no_range is not None and not r.no_range.message.strip():
        bad("no range, and the no-range message is empty")

    # -- range and zones ---------------------------------------------------------------------------
    rng = r.range
    for name, x in ([("main", rng)] if rng else []) + list((rng.nested_ranges if rng else {}).items()):
        hi, lo = x.range_high, x.range_low
        if not (math.isfinite(hi) and math.isfinite(lo) and lo < hi):
            bad(f"{name} range low {lo} / high {hi} not a box")
            continue
        if abs(x.range_mid - (hi + lo) / 2) > 1e-9 * hi:
            bad(f"{name} range mid {x.range_mid} is not the middle of {lo}..{hi}")
        if abs(x.range_width_pct - (hi - lo) / x.range_mid * 100) > 1e-9 * max(1.0, x.range_width_pct):
            bad(f"{name} range width {x.range_width_pct}% is not (high - low) / mid")
        if not (_on_grid(hi, d) and _on_grid(lo, d)):
            bad(f"{name} range edges {lo} / {hi} are not prices of the {p:g} grid")
        if not (x.start_time <= x.end_time <= now):
            bad(f"{name} range spans {_stamp(x.start_time)}..{_stamp(x.end_time)}, past the analysis time {_stamp(now)}")
        g = x.critical_gaps
        band = (hi - lo) * tcfg.range_detection.critical_zone_fraction
        over = tcfg.range_invalidation.outside_buffer_atr * x.atr
        eps = 1e-9 * hi
        if not (g.upper_zone_start <= g.upper_zone_end and g.lower_zone_start <= g.lower_zone_end):
            bad(f"{name} zone start after end: {g}")
        if not (hi - band - eps <= g.upper_zone_start <= hi + eps and hi - eps <= g.upper_zone_end <= hi + over + eps):
            bad(f"{name} upper zone {g.upper_zone_start}..{g.upper_zone_end} not within "
                f"[{hi - band}, {hi + over}] (high {hi}, band {band}, buffer {over})")
        if not (lo - over - eps <= g.lower_zone_start <= lo + eps and lo - eps <= g.lower_zone_end <= lo + band + eps):
            bad(f"{name} lower zone {g.lower_zone_start}..{g.lower_zone_end} not within "
                f"[{lo - over}, {lo + band}] (low {lo}, band {band}, buffer {over})")

    # -- strategies --------------------------------------------------------------------------------
    if r.strategies and rng is None:
        bad("strategies listed without a range")
    if len({s.direction for s in r.strategies}) > 1:
        bad(f"both directions listed: {[(s.strategy, s.direction.value) for s in r.strategies]}")
    ranked = sorted(r.strategies, key=lambda s: (not s.viable, -s.score))
    if [(s.viable, s.score) for s in ranked] != [(s.viable, s.score) for s in r.strategies]:
        bad(f"strategies not ranked viable-first by score: {[(s.strategy, s.viable, s.score) for s in r.strategies]}")
    if not r.strategies or rng is None:
        return out
    atr, last_h, last_l = _primary(symbol, now, primary)
    buf = (tcfg.range_detection.touch_tolerance_atr + tcfg.range_invalidation.outside_buffer_atr) * atr
    thr = tcfg.entry_filters.price_edge_threshold_atr * atr
    g = rng.critical_gaps
    for s in r.strategies:
        e, sl, tp = s.entry, s.stop_loss, s.take_profit
        what = f"{s.strategy} {s.direction.value} entry {e} SL {sl} TP {tp} R:R {s.rr} (viable={s.viable})"
        if not all(math.isfinite(v) for v in (e, sl, tp, s.rr, s.score)):
            bad(f"{what}: not finite")
            continue
        if not all(_on_grid(v, d) for v in (e, sl, tp)):
            bad(f"{what}: a price is off the {p:g} grid")
        sign = s.direction.sign
        risk = (e - sl) * sign
        # the stop is beyond the faded edge AND beyond the last bar's extreme, by the stop buffer
        if s.direction is Direction.LONG:
            need = min(rng.range_low, last_l) - buf
            if sl > need + 1e-9 * abs(need):
                bad(f"{what}: long stop above min(range low {rng.range_low}, bar low {last_l}) - buffer {buf:.6g} = {need}")
        else:
            need = max(rng.range_high, last_h) + buf
            if sl < need - 1e-9 * abs(need):
                bad(f"{what}: short stop below max(range high {rng.range_high}, bar high {last_h}) + buffer {buf:.6g} = {need}")
        # the target is inside the box, at most at the far edge (one point of rounding); shown on
        # the card for every listed strategy, so checked on all of them
        if sign > 0 and tp > rng.range_high + p * 1.0001:
            bad(f"{what}: long target above the range high {rng.range_high} by {tp - rng.range_high:.6g}")
        if sign < 0 and tp < rng.range_low - p * 1.0001:
            bad(f"{what}: short target below the range low {rng.range_low} by {rng.range_low - tp:.6g}")
        if not s.viable:
            if not s.reason.strip():
                bad(f"{what}: not tradeable, and no reason given")
            if risk > 0 and abs((tp - e) * sign / risk - s.rr) > 1e-4 + 2 * p * (1 + abs(s.rr)) / risk:
                bad(f"{what}: shown R:R differs from (TP - entry) / risk = {(tp - e) * sign / risk:.4f}")
            continue
        # -- a proposal: everything a trader relies on -----------------------------------------------
        if not (sl < e < tp if sign > 0 else tp < e < sl):
            bad(f"{what}: prices in the wrong order for a {s.direction.value}")
            continue
        true_rr = abs(tp - e) / abs(e - sl)
        tol = 5e-5 + 2 * p * (1 + true_rr) / max(abs(e - sl) - 2 * p, p)
        if abs(true_rr - s.rr) > tol:
            bad(f"{what}: shown R:R {s.rr} but |TP - entry| / |entry - SL| = {true_rr:.5f}")
        band = tcfg.strategy_rr.get(s.strategy)
        if band is not None and not (band.min - 1e-9 <= s.rr <= band.max + 1e-9):
            bad(f"{what}: R:R outside the configured {band.min}..{band.max}")
        if s.score < tcfg.entry_filters.min_strategy_score:
            bad(f"{what}: viable with score {s.score} below {tcfg.entry_filters.min_strategy_score}")
        # the entry is in the zone at the faded edge (or, inside the box, within the edge threshold)
        if sign > 0:
            ok = g.lower_zone_start - 1e-9 <= e <= max(g.lower_zone_end, rng.range_low + thr) + 1e-9
            zone = f"[{g.lower_zone_start}, {max(g.lower_zone_end, rng.range_low + thr)}]"
        else:
            ok = min(g.upper_zone_start, rng.range_high - thr) - 1e-9 <= e <= g.upper_zone_end + 1e-9
            zone = f"[{min(g.upper_zone_start, rng.range_high - thr)}, {g.upper_zone_end}]"
        if not ok:
            bad(f"{what}: entry outside the entry zone {zone} at the faded edge")
    return out


# -- the three sources of results ---------------------------------------------------------------------
_ENGINE: dict[str, tuple[list[AnalysisResult], list[float]]] = {}


def engine_results(symbol: str) -> tuple[list[AnalysisResult], list[float]]:
    """Every analysis the backtest engine ran over the configured M5 file, and its decision times.

    The engine's pre-screens skip the bars where the analysis provably cannot pass, so what it does
    analyse is exactly the population with setups in it, through the live path (broker feed, quote)."""
    if symbol not in _ENGINE:
        seen: list[AnalysisResult] = []
        orig = analysis_mod.analyse_range_scalp_opportunity

        def record(*a, **k):
            res = orig(*a, **k)
            seen.append(res)
            return res

        mp = pytest.MonkeyPatch()
        mp.setattr(analysis_mod, "analyse_range_scalp_opportunity", record)
        try:
            rep = BacktestEngine(app(), BacktestSpec(symbol, candles(symbol)["M5"])).run()
        finally:
            mp.undo()
        assert rep.analysis_calls == len(seen), "the engine analysed through another door"
        _ENGINE[symbol] = (seen, [s.decision_time for s in rep.signals])
    return _ENGINE[symbol]


def random_results(symbol: str) -> list[AnalysisResult]:
    n = len(candles(symbol)["M5"])
    idx = np.random.default_rng(SEED + len(symbol)).choice(np.arange(400, n), size=RANDOM_BARS, replace=False)
    return [run(symbol, bar_close(symbol, int(i))) for i in sorted(idx)]


def quoted_results(symbol: str) -> list[AnalysisResult]:
    """The same random bars with a live quote, as PaperBroker gives it (bid = the next bar's open, ask
    = bid + that bar's spread, or the configured default): entries at the ask (long) / bid (short)."""
    spec = app().symbols[symbol]
    m5 = candles(symbol)["M5"]
    n = len(m5)
    idx = np.random.default_rng(SEED + len(symbol)).choice(np.arange(400, n - 1), size=RANDOM_BARS, replace=False)
    out = []
    for i in sorted(int(i) for i in idx):
        nxt = m5[i + 1]
        bid = float(nxt["open"])
        pts = float(nxt["spread"]) if nxt["spread"] > 0 else float(spec.default_spread_points)
        now = bar_close(symbol, i)
        out.append(run(symbol, now, tick=Tick(time=now, bid=bid, ask=round(bid + pts * spec.point, spec.digits))))
    return out


def decision_results(symbol: str) -> list[AnalysisResult]:
    _, times = engine_results(symbol)
    secs = Timeframe.parse(app().for_symbol(symbol).range_detection.timeframe).seconds
    assert all(t % secs == 0 for t in times)
    return [run(symbol, t) for t in times]


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_every_listed_setup_is_sane(symbol):
    live, times = engine_results(symbol)
    sources = {"engine (live path)": live, "random bars": random_results(symbol),
               "random bars with a quote": quoted_results(symbol),
               "decision bars (historical path)": decision_results(symbol)}
    found: list[str] = []
    count = Counter()
    for label, results in sources.items():
        for r in results:
            found += [f"[{label}] {v}" for v in violations(symbol, r)]
            count[label, "results"] += 1
            count[label, "passed"] += r.passed
            count[label, "strategies"] += len(r.strategies)
            count[label, "viable"] += sum(s.viable for s in r.strategies)
    assert not found, f"{len(found)} violations, first ones:\n" + "\n".join(found[:15])
    # the checks above must have had real proposals to bite on, not just empty results
    assert count["engine (live path)", "passed"] >= 20, count
    assert count["engine (live path)", "viable"] >= 20, count
    assert count["random bars", "strategies"] >= 10, count
    assert count["random bars with a quote", "strategies"] >= 10, count
    assert len(times) >= 20 and count["decision bars (historical path)", "viable"] >= 10, count


def _mutations(r: AnalysisResult) -> dict[str, AnalysisResult]:
    """A passing result broken in each way the checks are meant to catch."""
    s = r.strategies[0]
    sign, rng = s.direction.sign, r.range
    far = rng.range_high if sign > 0 else rng.range_low
    risk = abs(s.entry - s.stop_loss)

    def strat(**kw) -> AnalysisResult:
        return r.model_copy(update={"strategies": [s.model_copy(update=kw), *r.strategies[1:]]})

    blocking = r.filters[0].model_copy(update={"passed": False, "reason": "", "blocking": True})
    g = rng.critical_gaps
    return {
        "prices in the wrong order": strat(stop_loss=s.entry + sign * risk),
        "stop above min(range low" if sign > 0 else "stop below max(range high": strat(
            stop_loss=round(s.entry - sign * 0.01 * risk, 2)),
        "target above the range high" if sign > 0 else "target below the range low": strat(
            take_profit=round(far + sign * risk, 5)),
        "shown R:R": strat(rr=s.rr + 0.1),
        "grid": strat(entry=s.entry + 0.3 * 10.0 ** -4),
        "not finite": strat(take_profit=float("nan")),
        "passed with blocking failures": r.model_copy(update={"filters": [blocking, *r.filters[1:]]}),
        "no reason text": r.model_copy(update={"filters": [r.filters[0].model_copy(update={"reason": " "}),
                                                          *r.filters[1:]]}),
        "blocked with no reason": r.model_copy(update={"passed": False, "confidence": 10.0, "warnings": [],
                                                       "filters": [blocking, *r.filters[1:]]}),
        "blocked but confidence": r.model_copy(update={"passed": False, "confidence": 55.0}),
        "upper zone": r.model_copy(update={"range": rng.model_copy(update={"critical_gaps": g.model_copy(
            update={"upper_zone_end": rng.range_high + 5 * rng.atr})})}),
        "entry zone": strat(entry=round(rng.range_mid, 2)),
        "past the analysis time": r.model_copy(update={"range": rng.model_copy(update={"end_time": r.as_of + 300})}),
        "confluence filter says": r.model_copy(update={"confluence_score": r.confluence_score + 5}),
        "untested": r.model_copy(update={"range": rng.model_copy(update={"validated": False})}),
        "both directions": r.model_copy(update={"strategies": [
            *r.strategies, s.model_copy(update={"direction": Direction.SHORT if sign > 0 else Direction.LONG,
                                                "viable": False, "score": 0.0})]}),
    }


def test_the_checks_catch_each_kind_of_broken_setup():
    """The invariants are not vacuous: a real passing result, broken one way at a time, is flagged."""
    live, _ = engine_results("XAUUSDc")
    r = next(x for x in live if x.passed and x.strategies[0].viable)
    assert violations("XAUUSDc", r) == []
    missed = [name for name, bad in _mutations(r).items()
              if not any(name in v for v in violations("XAUUSDc", bad))]
    assert not missed, f"not flagged: {missed}"
