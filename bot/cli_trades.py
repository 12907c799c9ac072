"""`moneybot trades open|closed|metrics|reconcile`: the trade lifecycle from a terminal.

`open`, `closed` and `metrics` only read the store (safe while the bot runs). `reconcile` runs the
start-up recovery once against the configured broker (interrupted proposals, closes while down,
orphans) and prints what it did: the same code the bot runs before it starts monitoring.
"""
from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime

from core.config.loading import load_config
from core.config.paths import resolve_path
from core.domain.exceptions import UserFacingError
from core.domain.wording import price_text

MAX_ROWS = 100_000  # beyond SQLite's integers a huge -n was an OverflowError traceback


def register(sub) -> None:
    p = sub.add_parser("trades", help="open/closed range scalps, metrics, start-up reconciliation")
    tsub = p.add_subparsers(dest="trades_command", metavar="ACTION")
    o = tsub.add_parser("open", help="trades the exit manager is watching")
    c = tsub.add_parser("closed", help="the last closed trades")
    c.add_argument("-n", type=int, default=10, help="how many (default 10)")
    m = tsub.add_parser("metrics", help="P&L, win rate, expectancy, drawdown, per strategy and session")
    m.add_argument("--days", type=int, help="only trades closed in the last N days")
    r = tsub.add_parser("reconcile", help="run start-up recovery against the configured broker once")
    for q in (o, c, m, r):
        q.add_argument("--store", help="SQLite store path (default: config store.path)")
        q.add_argument("--json", action="store_true", help="print JSON")
    o.set_defaults(func=_open)
    c.set_defaults(func=_closed)
    m.set_defaults(func=_metrics)
    r.set_defaults(func=_reconcile)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _store(args, must_exist: bool = True):
    from bot.cli import check_store_file, user_path
    from core.api import Store

    path = user_path(args.store) if args.store else resolve_path(load_config(args.config).store.path)
    if must_exist and not path.exists():
        raise UserFacingError(f"no store at {path} (nothing has been recorded yet)")
    check_store_file(path)
    return Store(path)


def _price_fmt(args):
    """Prices at the symbol's own precision (3210.80, not 3210.8; no float noise either)."""
    try:
        symbols = load_config(args.config).symbols
    except Exception:  # noqa: BLE001 - a broken config must not hide the journal; 2 decimals then
        symbols = {}

    def fmt(symbol: str, x: float) -> str:
        spec = symbols.get(symbol)
        return price_text(x, spec.digits if spec is not None else 2)

    return fmt


def _currency(store, args) -> str:
    """The account's currency as the bot last learnt it (the store keeps it), else the paper account's."""
    cur = store.kv.get("account_currency")
    if isinstance(cur, str) and cur:
        return cur
    try:
        return "USD" if load_config(args.config).broker.kind == "paper" else ""
    except Exception:  # noqa: BLE001 - a figure without its unit beats no journal
        return ""


def _t(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _open(args) -> int:
    with _store(args) as store:
        trades = store.trades.all()
    if args.json:
        print(json.dumps([t.to_dict() for t in trades], indent=2))
        return 0
    if not trades:
        print("No open range scalps.")
    p = _price_fmt(args)
    for t in trades:
        be = " BE" if t.breakeven_moved else ""
        print(f"#{t.ticket} {t.symbol} {t.direction.value} {t.volume:g} {t.strategy} entry {p(t.symbol, t.entry_price)} "
              f"SL {p(t.symbol, t.sl)} TP {p(t.symbol, t.tp)} since {_t(t.entry_time)} MFE {t.mfe_r:+.2f} R MAE {t.mae_r:+.2f} R "
              f"[{t.exit_manager_state}{be}]")
    return 0


def _closed(args) -> int:
    if args.n < 1:
        raise UserFacingError("-n must be at least 1")
    if args.n > MAX_ROWS:
        raise UserFacingError(f"-n must be between 1 and {MAX_ROWS}")
    from bot.formatting import money
    from core.api import exit_reason_words

    with _store(args) as store:
        trades = store.closed.recent(args.n)
        cur = _currency(store, args)
    if args.json:
        print(json.dumps([t.to_dict() for t in trades], indent=2))
        return 0
    if not trades:
        print("No closed trades yet.")
    p = _price_fmt(args)
    for t in trades:
        print(f"#{t.ticket} {t.symbol} {t.direction.value} {t.strategy} {_t(t.entry_time)} → {_t(t.exit_time)} "
              f"{p(t.symbol, t.entry_price)} → {p(t.symbol, t.exit_price)} {t.r_multiple:+.2f} R "
              f"P&L {money(t.pnl - abs(t.commission), cur)} ({exit_reason_words(t.exit_reason)})")
    return 0


def _metrics(args) -> int:
    from core.api import compute_metrics

    if args.days is not None and args.days < 1:  # 0 used to mean "all trades", -1 "none": say so instead
        raise UserFacingError("--days must be at least 1 (leave it out for every closed trade)")
    from bot.trade_reports import metrics_text

    with _store(args) as store:
        since = store.clock.now() - args.days * 86400 if args.days else 0.0
        # a live journal has no in-sample/out-of-sample split: nothing was fitted on its first 70 %
        report = compute_metrics(store.closed.since(since), split_fraction=None)
        cur = _currency(store, args)
    if args.json:
        print(report.model_dump_json(indent=2))
        return 0
    print(metrics_text(report, args.days, currency=cur))  # the chat's words, with the currency
    if report.overall.trades:
        from core.api import format_report

        print(f"\nIn detail (money in {cur or 'the account currency'}):")
        print(format_report(report))
    return 0


def _reconcile(args) -> int:
    from core.app import build_service

    cfg = load_config(args.config)
    store = _store(args, must_exist=False)

    async def go():
        svc = build_service(cfg, store=store)
        try:
            return await svc.start(monitor=False)
        finally:
            await svc.stop()

    try:
        rep = asyncio.run(go())
    finally:
        store.close()
    if args.json:
        print(rep.model_dump_json(indent=2))
    else:
        for k, v in rep.model_dump().items():
            print(f"{k:>20}: {f'{v:.1f}' if isinstance(v, float) else v}")
    return 0 if rep.broker_ok else 1


if __name__ == "__main__":  # pragma: no cover
    from bot.cli import main

    sys.exit(main(["trades", *sys.argv[1:]]))
