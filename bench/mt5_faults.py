"""MT5 fault sequences on both account models: the wired service on the MT5 adapter over the fake terminal
(tests/fakes/fake_mt5.py, which models netting, identifiers, PLACED, freeze level, trade mode, FIFO...),
replaying real XAUUSD M5 bars.

    .venv/bin/python bench/mt5_faults.py [--sequences 1000] [--seed 1] [--modes hedging,netting]

Each sequence: propose -> approve with a random entry fault -> 1..6 monitor cycles (bars advance) with
random read/stop-move faults -> /close with a random close fault -> cycles until flat. Faults: IPC errors
before/after the order executed (-10004/-10005), a timeout that executed late, PLACED with a delayed or no
fill, requotes, 10024, 10031, an order_check refusal, close-only mode, a trader's position on the symbol
(netting), a freeze level, FROZEN, 10036/10038/10039 on closes, a swap re-open (new ticket, same identifier).

Printed per account model (all must be 0): duplicate orders (more than one entry deal for a proposal),
positions without a stop loss, journal mismatches (a closed position of ours not journalled, a journalled
close whose P&L or volume differs from the deals, an open position of ours not monitored); and the worst
wall time of one operation as the fake clock measured it (every sleep the code asked for), next to the
documented bound (`core.brokers.mt5.orders.worst_case_seconds`).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import lifecycle_helpers as k  # noqa: E402
from fakes import fake_mt5 as mt5  # noqa: E402
from mt5_lifecycle_helpers import MODES, SYMBOL, MT5World  # noqa: E402

from core.brokers.mt5.orders import worst_case_seconds  # noqa: E402
from core.brokers.tags import proposal_id_from_comment  # noqa: E402
from core.domain.models import AnalysisResult, Direction, StrategyScore  # noqa: E402

ENTRY_FAULTS = ["none", "none", "link_down", "ipc_before", "ipc_after", "ipc_timeout_exec", "ipc_timeout_lost", "timeout_exec",
                "placed_fill", "placed_never", "requote", "too_many", "no_link", "check_no_money", "close_only",
                "trader_position"]
CYCLE_FAULTS = ["none", "none", "none", "terminal_down", "positions_ipc", "freeze", "frozen", "reopen", "rewrite_comment"]
CLOSE_FAULTS = ["none", "none", "closed_meanwhile", "close_volume", "close_exists", "requote", "ipc_after", "no_link"]


def analyser_for(world_box, bars):
    """A long from the current quote with a 3.00 stop and a 9.00 target, in the recent bars' range."""
    def analyse(symbol: str) -> AnalysisResult:
        w = world_box["w"]
        now = w.clock.now()
        hist = bars[bars["time"] + 300 <= now][-48:]
        atr = float((hist["high"] - hist["low"]).mean())
        tick = mt5.symbol_info_tick(SYMBOL) if mt5.symbol_select(SYMBOL, True) else None
        entry = float(tick.ask) if tick else float(hist["close"][-1])
        rng = k.range_of(symbol, hist, atr)
        s = StrategyScore(strategy="bb_fade", direction=Direction.LONG, entry=entry, stop_loss=entry - 3.0,
                          take_profit=entry + 9.0, rr=3.0, score=72.0)
        return AnalysisResult(symbol=symbol, timeframe="M5", as_of=now, range=rng, passed=True, strategies=[s],
                              confidence=70.0, session="london", confluence_score=68.0)
    return analyse


def inject_entry(fault: str, rng: random.Random) -> None:
    if fault == "ipc_before":
        mt5.fake_inject("order_send", error=-10004)
    elif fault == "link_down":  # the terminal is gone for a while: the reconnect needs all its attempts
        mt5.fake_inject("order_send", error=-10004)
        mt5.fake_inject("initialize", error=-10003, times=rng.randint(1, 2))
    elif fault == "ipc_after":
        mt5.fake_inject("order_send", error=rng.choice([-10003, -10004]), executed=True)
    elif fault == "ipc_timeout_exec":
        mt5.fake_inject("order_send", error=-10005, executed=True, visible_after=rng.randint(0, 4))
    elif fault == "ipc_timeout_lost":
        mt5.fake_inject("order_send", error=-10005)
    elif fault == "timeout_exec":
        mt5.fake_inject("order_send", retcode=10012, executed=True, visible_after=rng.randint(0, 4))
    elif fault == "placed_fill":
        mt5.fake_inject("order_send", retcode=10008, fill_after=rng.randint(1, 8))
    elif fault == "placed_never":
        mt5.fake_inject("order_send", retcode=10008, fill_after=None)
    elif fault == "requote":
        mt5.fake_inject("order_send", retcode=10004, times=rng.randint(1, 3))
    elif fault == "too_many":
        mt5.fake_inject("order_send", retcode=10024, times=rng.randint(1, 3))
    elif fault == "no_link":
        mt5.fake_inject("order_send", retcode=10031, times=rng.randint(1, 4))
    elif fault == "check_no_money":
        mt5.fake_inject("order_check", retcode=10019)


def inject_cycle(fault: str, rng: random.Random) -> None:
    if fault == "positions_ipc":
        mt5.fake_inject("positions_get", error=-10004)
    elif fault == "terminal_down":  # down for the whole cycle: connection lost, back on a later cycle
        mt5.fake_inject("positions_get", error=-10004)
        mt5.fake_inject("initialize", error=-10003, times=3)
    elif fault == "freeze":
        mt5.fake_set_symbol(SYMBOL, freeze_level=rng.choice([0, 100, 400]))
    elif fault == "frozen":
        mt5.fake_inject("order_send", retcode=10029)
    elif fault in ("reopen", "rewrite_comment"):
        ours = [p for p in mt5.positions_get() or () if p.magic]
        if ours and fault == "reopen":
            mt5.fake_reopen(ours[0].ticket)
        elif ours:
            mt5.fake_rewrite_comment(ours[0].ticket, "[sl 1.2345] rewritten")


def inject_close(fault: str, rng: random.Random) -> None:
    codes = {"closed_meanwhile": 10036, "close_volume": 10038, "close_exists": 10039, "requote": 10004,
             "no_link": 10031}
    if fault in codes:
        mt5.fake_inject("order_send", retcode=codes[fault])
    elif fault == "ipc_after":
        mt5.fake_inject("order_send", error=-10004, executed=True)


def trader_order(side: int, volume: float) -> None:
    mt5.symbol_select(SYMBOL, True)
    t = mt5.symbol_info_tick(SYMBOL)
    mt5.order_send(dict(action=mt5.TRADE_ACTION_DEAL, symbol=SYMBOL, volume=volume, type=side,
                        price=t.ask if side == 0 else t.bid, deviation=500, magic=0, comment="trader",
                        type_filling=mt5.ORDER_FILLING_FOK, type_time=0))


def close_trader_positions() -> None:
    for p in mt5.positions_get() or ():
        if p.magic == 0:
            t = mt5.symbol_info_tick(SYMBOL)
            mt5.order_send(dict(action=mt5.TRADE_ACTION_DEAL, symbol=SYMBOL, volume=p.volume, type=1 - p.type,
                                position=p.ticket, price=t.bid if p.type == 0 else t.ask, deviation=500, magic=0,
                                comment="", type_filling=mt5.ORDER_FILLING_FOK, type_time=0))


class Tally:
    def __init__(self) -> None:
        self.duplicates = self.no_sl = self.mismatches = 0
        self.opened = self.refused = 0
        self.outcomes: dict[str, list[int]] = {}  # entry fault -> [entered, not entered]
        self.resumes = 0
        self.worst_op = 0.0
        self.notes: list[str] = []
        self.flagged: set[tuple[str, int]] = set()  # each problem counted once, however often it is seen

    def flag(self, kind: str, key: int, note: str) -> None:
        if (kind, key) not in self.flagged:
            self.flagged.add((kind, key))
            self.notes.append(note)
            if kind == "duplicate":
                self.duplicates += 1
            elif kind == "no_sl":
                self.no_sl += 1
            else:
                self.mismatches += 1


def check(w: MT5World, magic: int, tally: Tally, final: bool) -> None:
    svc = w.svc
    ours = [p for p in mt5.positions_get() or () if p.magic == magic]
    for p in ours:
        if not p.sl:
            tally.flag("no_sl", p.identifier, f"position {p.identifier} has no stop loss")
    if not final:
        return
    deals = mt5.history_deals_get(0, 2**31)
    by_pid: dict[str, int] = {}
    for d in deals:
        pid = proposal_id_from_comment(d.comment)
        if pid and d.entry == 0 and d.magic == magic:
            by_pid[pid] = by_pid.get(pid, 0) + 1
    for pid, n in by_pid.items():
        if n > 1:
            tally.flag("duplicate", hash(pid), f"proposal {pid}: {n} entry deals")
    known = {t.ticket for t in svc.exits.active_trades()}
    for p in ours:
        if p.identifier not in known:
            tally.flag("unmonitored", p.identifier, f"open position {p.identifier} not monitored")
    idents = {d.position_id for d in deals if d.magic == magic and d.position_id}
    open_ids = {p.identifier for p in ours}
    for ident in idents - open_ids:
        closed = svc.store.closed.get(ident)
        mine = [d for d in deals if d.position_id == ident]
        outs = [d for d in mine if d.entry in (1, 2)]
        if closed is None:
            tally.flag("unjournalled", ident, f"closed position {ident} not journalled")
            continue
        pnl = sum(d.profit + d.swap for d in mine)
        if abs(closed.pnl - pnl) > 1e-6 or abs(closed.volume - sum(d.volume for d in outs)) > 1e-9:
            tally.flag("journal", ident, f"journal of {ident}: pnl {closed.pnl} vs deals {pnl}")


async def run_mode(mode: str, n: int, seed: int, tmp: Path) -> Tally:
    # every sequence may enter: no cooldown or per-range cap, any session (the faults are what is tested)
    cfg = k.config({"exits": {"reentry_cooldown_minutes": 0, "max_reentries_per_range": 100},
                    "sessions": {"allow_outside_sessions": True}})
    bars = k.m5(cfg, SYMBOL)
    rng = random.Random(seed)
    box: dict = {}
    (tmp / mode).mkdir(parents=True, exist_ok=True)
    w = box["w"] = MT5World(cfg, tmp / mode, bars, 20000, MODES[mode], analyser=analyser_for(box, bars))
    svc = w.svc
    await svc.start(monitor=False)
    magic = cfg.execution.magic_number
    tally = Tally()
    conn, orders = w.broker.connection_policy, w.broker.order_policy
    ex = cfg.error_handling["exit_order_fails"]
    bound = worst_case_seconds(conn, orders, exit_attempts=ex.max_retries, exit_interval=ex.retry_interval)

    def op_time(start: int) -> float:
        return sum(w.sleeps[start:])

    for i in range(n):
        if i % 100 == 0:
            print(f"  {mode}: {i}/{n}", file=sys.stderr)
        if svc.notifier.entries_blocked():
            # the deliberate faults trip the error-rate kill switch (as they should): a human resumes
            tally.resumes += 1
            svc.resume(k.TRADER)
        fault = rng.choice(ENTRY_FAULTS if mode == "netting" else ENTRY_FAULTS[:-1])
        mt5.fake_set_symbol(SYMBOL, trade_mode=mt5.SYMBOL_TRADE_MODE_FULL, freeze_level=0)
        if fault == "close_only":
            mt5.fake_set_symbol(SYMBOL, trade_mode=mt5.SYMBOL_TRADE_MODE_CLOSEONLY)
        if fault == "trader_position":
            trader_order(rng.choice([0, 1]), 0.02)
        _, props = await svc.propose(SYMBOL)
        if props:
            inject_entry(fault, rng)
            s0 = len(w.sleeps)
            out = await svc.approve(props[0].id, k.TRADER)
            tally.worst_op = max(tally.worst_op, op_time(s0))
            tally.opened += out.ok
            tally.refused += not out.ok
            tally.outcomes.setdefault(fault, [0, 0])[0 if out.ok else 1] += 1
        else:
            tally.refused += 1
            tally.outcomes.setdefault(fault + " (no card)", [0, 0])[1] += 1
        mt5.fake_set_symbol(SYMBOL, trade_mode=mt5.SYMBOL_TRADE_MODE_FULL)
        for _ in range(rng.randint(1, 6)):
            inject_cycle(rng.choice(CYCLE_FAULTS), rng)
            w.step()
            s0 = len(w.sleeps)
            await svc.monitor.run_cycle()
            tally.worst_op = max(tally.worst_op, op_time(s0))
            check(w, magic, tally, final=False)
        mt5.fake_set_symbol(SYMBOL, freeze_level=0)
        mt5.S.faults.clear()
        for t in svc.exits.active_trades():
            inject_close(rng.choice(CLOSE_FAULTS), rng)
            s0 = len(w.sleeps)
            await svc.close_trade(t.ticket, k.TRADER)
            tally.worst_op = max(tally.worst_op, op_time(s0))
        mt5.S.faults.clear()
        close_trader_positions()
        for _ in range(12):  # until flat: late fills land, get adopted, closed and journalled
            w.step()
            await svc.monitor.run_cycle()
            for t in svc.exits.active_trades():
                await svc.close_trade(t.ticket, k.TRADER)
            if not svc.exits.active_trades() and not mt5.S.placed and not mt5.positions_get():
                break
        await svc.monitor.run_cycle()
        check(w, magic, tally, final=(i % 50 == 49 or i == n - 1))
    tally.bound = bound  # type: ignore[attr-defined]
    svc.store.close()
    return tally


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sequences", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--modes", default="hedging,netting")
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)  # the faults are deliberate: their warnings are noise here
    bad = 0
    with tempfile.TemporaryDirectory() as d:
        for mode in args.modes.split(","):
            t0 = time.perf_counter()
            t = asyncio.run(run_mode(mode, args.sequences, args.seed, Path(d)))
            el = time.perf_counter() - t0
            b = t.bound  # type: ignore[attr-defined]
            print(f"{mode}: {args.sequences} sequences in {el:.1f}s ({t.opened} entries, {t.refused} refused/failed, "
                  f"kill switch tripped and resumed {t.resumes} times)")
            print(f"  duplicate orders:          {t.duplicates}")
            print(f"  positions without SL:      {t.no_sl}")
            print(f"  journal mismatches:        {t.mismatches}")
            print(f"  worst wall time of one operation (fake clock): {t.worst_op:.1f}s "
                  f"(documented bounds: entry {b['entry']:.0f}s, exit {b['exit']:.0f}s, connect {b['connect']:.0f}s)")
            print("  entries by fault (entered/not): " + ", ".join(
                f"{f} {a}/{b}" for f, (a, b) in sorted(t.outcomes.items())))
            for note in t.notes[:10]:
                print(f"    {note}")
            bad += t.duplicates + t.no_sl + t.mismatches + (t.worst_op > max(b.values()))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
