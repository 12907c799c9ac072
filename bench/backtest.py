"""Full-pipeline backtest throughput vs backtesting.py replaying the same signals, in one run.

    .venv/bin/python bench/backtest.py            # ≥100k M5 bars across real series
    .venv/bin/python bench/backtest.py --quick    # first 5k bars of each series
    .venv/bin/python bench/backtest.py --verify   # also re-run every series without the pre-screens
                                                  # (~2 min more) and check signals/trades are identical
    .venv/bin/python bench/backtest.py --profile  # also a cProfile pass (untimed) of both legs: top 15
                                                  # functions by cumulative time, printed before the summary

"Full pipeline" = PaperBroker step mode + the live analysis (when flat) + ExecutionEngine +
exit rules + store journal, per M5 bar. backtesting.py gets only the resulting orders (no analysis).
The like-for-like figure is the "simulation leg": the same signals replayed through PaperBroker +
monitor + execution + store alone (`BacktestEngine(decisions=...)`, no analysis, trades checked equal),
against backtesting.py replaying them. The last line gives both.
Our figure includes building the pre-screens (`core.backtest.prescreen`, `core.backtest.range_screen` and its
per-bar inputs from `core.backtest.range_keys`), which skip the analysis on flat bars where it provably cannot
lead to a trade; the count is printed.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.backtest.engine import BacktestEngine, BacktestSpec  # noqa: E402
from core.backtest.peer import candles_frame, compare, cost_free_exit_bar, run_peer  # noqa: E402
from core.config.loading import load_config  # noqa: E402
from core.config.paths import market_data_dir  # noqa: E402
from core.data.loaders import load_candles  # noqa: E402
from core.data.resample import resample  # noqa: E402

SERIES = [
    ("XAUUSDc", "budimanlai__forex-tick/data/XAUUSD_M5.csv", 2, False),
    ("EURUSDc", "01Javier__trading-eurusd/data/EURUSD_M5.csv", 3, False),
    ("BTCUSDc", "mahmer2011__trading_bot/data/BTCUSD_M5.csv", 3, False),
    ("BTCUSDc", "nautechsystems__nautilus_trader/tests/test_data/btc-perp-20211231-20220201_1m.csv", 0, True),
    ("XAUUSDc", "mahmer2011__trading_bot/data/XAUUSD_M5.csv", 3, False),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--verify", action="store_true")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    cfg = load_config()
    tot_bars = tot_secs = peer_bars = peer_secs = ana_secs = scr_secs = sim_secs = 0.0
    tot_trades = tot_calls = mismatches = explained = tot_screened = tot_gated = 0
    # the cProfile pass runs after each timed pair, so the printed timings stay unprofiled
    prof_full, prof_sim = cProfile.Profile(), cProfile.Profile()
    print(f"{'series':<70}{'bars':>8}{'trades':>8}{'bars/s':>10}{'sim bars/s':>12}{'peer bars/s':>13}")
    for sym, rel, tz, m1 in SERIES:
        c = load_candles(market_data_dir() / rel, tz_offset_hours=tz)
        if m1:
            c = resample(c, "M5", drop_incomplete=True)
        if args.quick:
            c = c[:5000]
        eng = BacktestEngine(cfg, BacktestSpec(sym, c))
        rep = eng.run()
        # the simulation leg alone: the same signals replayed through PaperBroker + monitor + execution +
        # store (no analysis, no pre-screens), like for like with backtesting.py below
        sim = BacktestEngine(cfg, BacktestSpec(sym, c), decisions=eng.decisions).run()
        if ([t.model_dump(exclude={"proposal_id"}) for t in sim.trades]
                != [t.model_dump(exclude={"proposal_id"}) for t in rep.trades]):
            raise SystemExit(f"{sym}: replaying the signals changed the trades")
        sim_secs += sim.seconds
        if args.profile:
            prof_full.runcall(BacktestEngine(cfg, BacktestSpec(sym, c)).run)
            prof_sim.runcall(BacktestEngine(cfg, BacktestSpec(sym, c), decisions=eng.decisions).run)
        if args.verify:
            ref = BacktestEngine(cfg, BacktestSpec(sym, c), prescreen=False).run()
            same = ([x.model_dump() for x in rep.signals] == [x.model_dump() for x in ref.signals]
                    and [t.model_dump(exclude={"proposal_id"}) for t in rep.trades]
                    == [t.model_dump(exclude={"proposal_id"}) for t in ref.trades])
            print(f"  verify {sym}: without pre-screens {ref.analysis_calls} analysis calls, {ref.bars_per_second:.0f} "
                  f"bars/s; signals and trades {'IDENTICAL' if same else 'DIFFER'}")
            if not same:
                raise SystemExit("the pre-screens changed a decision")
        frame = candles_frame(c)
        peer = run_peer(c, rep.signals, frame=frame)
        by_id = {s.id: s for s in rep.signals}
        peer_exit = {int(r.Tag): int(r.ExitBar) for r in peer.trades.itertuples()}
        for m in compare(rep.signals, peer, c):
            if m.field in ("entry_bar", "exit_bar", "missing"):
                mismatches += 1
                if m.field == "exit_bar" and cost_free_exit_bar(by_id[m.signal_id], c) == peer_exit.get(m.signal_id):
                    explained += 1
        tot_bars += rep.bars
        tot_secs += rep.seconds
        peer_bars += peer.bars
        peer_secs += peer.seconds
        tot_trades += len(rep.trades)
        tot_calls += rep.analysis_calls
        tot_screened += rep.prescreened
        tot_gated += rep.session_gated
        ana_secs += rep.analysis_seconds
        scr_secs += rep.screen_seconds
        name = rel.split("/")[0] + ("  (1m→M5)" if m1 else "")
        print(f"{sym + ' ' + name:<70}{rep.bars:>8}{len(rep.trades):>8}{rep.bars_per_second:>10.0f}"
              f"{sim.bars / max(sim.seconds, 1e-9):>12.0f}{peer.bars_per_second:>13.0f}")
    if args.profile:
        for title, prof in (("full pipeline", prof_full), ("simulation leg", prof_sim)):
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(15)
            body = out.getvalue()
            print(f"\ncProfile, {title} (5 series, untimed pass), top 15 by cumulative time:")
            print(body[body.index("   ncalls"):].rstrip())
    ours = tot_bars / tot_secs
    theirs = peer_bars / peer_secs
    print(f"\nTOTAL {int(tot_bars)} M5 bars, {tot_trades} trades, {tot_calls} analysis calls")
    print(f"flat bars not analysed: {tot_screened} skipped by the pre-screens (core.backtest.prescreen + range_screen), "
          f"{tot_gated} by the session filter")
    print(f"full pipeline (ours): {ours:,.0f} bars/s   ({tot_secs:.1f} s, {1e6 * tot_secs / tot_bars:.0f} µs per bar)")
    rest = tot_secs - ana_secs - scr_secs
    print(f"  of which analysis: {ana_secs:.1f} s ({1000 * ana_secs / max(tot_calls, 1):.2f} ms/call); pre-screens "
          f"(build + per-bar checks): {scr_secs:.1f} s; everything else (PaperBroker, Monitor cycles, execution, "
          f"store, session filter, loop): {rest:.1f} s = {tot_bars / rest:,.0f} bars/s")
    print(f"backtesting.py replaying the same signals: {theirs:,.0f} bars/s   ({peer_secs:.2f} s)")
    print(f"simulation leg (ours, same signals, no analysis): {tot_bars / sim_secs:,.0f} bars/s   ({sim_secs:.2f} s)")
    print(f"bar disagreements with costs on (peer runs cost-free): {mismatches}, of which {explained} reproduce the "
          f"peer's bar when PaperBroker's stop rule is re-run with spread/slippage 0 (fill rule 5)")
    print(f"full pipeline: {ours:,.0f} bars/s over {int(tot_bars)} bars · simulation leg: "
          f"{(tot_bars / sim_secs) / theirs:.2f}× backtesting.py on the same signals")


if __name__ == "__main__":
    main()
