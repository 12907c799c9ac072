"""`moneybot state export`: the store's view as JSON (the successor of range_scalp_trades_active.json)."""
from __future__ import annotations

import json
import sys

from core.config import load_config, resolve_path
from core.exceptions import UserFacingError


def register(sub) -> None:
    p = sub.add_parser("state", help="inspect the persisted trading state")
    ssub = p.add_subparsers(dest="state_command", metavar="ACTION")
    exp = ssub.add_parser("export", help="print active trades, proposals, journal, errors and kill switch as JSON")
    exp.add_argument("--store", help="SQLite store path (default: config store.path)")
    exp.add_argument("--limit", type=int, default=100, help="rows per history section (default 100)")
    exp.add_argument("--compact", action="store_true", help="one-line JSON")
    exp.set_defaults(func=_export)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _export(args) -> int:
    from core.store import Store

    if args.store:
        path = resolve_path(args.store)
    else:
        path = resolve_path(load_config(args.config).store.path)
    if not path.exists():
        raise UserFacingError(f"no store at {path} (nothing has been recorded yet)")
    if args.limit < 1:
        raise UserFacingError("--limit must be at least 1")
    with Store(path) as store:
        view = store.export(limit=args.limit)
    json.dump(view, sys.stdout, indent=None if args.compact else 2, sort_keys=False)
    sys.stdout.write("\n")
    return 0
