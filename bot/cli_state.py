"""`moneybot state ...`: the store's view as JSON (the successor of range_scalp_trades_active.json), and
pause/resume of new entries from a shell, for when the chat bots are down."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from core.config.model import load_config, resolve_path
from core.config.settings import mask_secrets
from core.domain.exceptions import UserFacingError

MAX_ROWS = 100_000


def register(sub) -> None:
    p = sub.add_parser("state", help="inspect the persisted trading state, pause or resume new entries")
    ssub = p.add_subparsers(dest="state_command", metavar="ACTION")
    exp = ssub.add_parser("export", help="print active trades, proposals, journal, errors and kill switch as JSON")
    exp.add_argument("--store", help="SQLite store path (default: config store.path)")
    exp.add_argument("--limit", type=int, default=100, help="rows per history section (default 100)")
    exp.add_argument("--compact", action="store_true", help="one-line JSON")
    exp.set_defaults(func=_export)
    for name, helptext in (("pause", "block new entries (exits keep running)"),
                           ("resume", "allow new entries again (also clears an auto-disable)")):
        sp = ssub.add_parser(name, help=helptext)
        sp.add_argument("--store", help="SQLite store path (default: config store.path)")
        sp.add_argument("--by", default="cli", help="who is doing this (recorded in the audit log)")
        sp.add_argument("--reason", default="", help="why (pause only)")
        sp.set_defaults(func=_pause if name == "pause" else _resume)
    rp = ssub.add_parser("reset-paper", help="start a fresh paper account (the old account and its store are "
                                             "moved to data/backup-<time>/; stop MoneyBot first)")
    rp.set_defaults(func=_reset_paper)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _reset_paper(args) -> int:
    import time

    from core.app import reset_paper_account

    backup, moved = reset_paper_account(load_config(args.config), time.strftime("%Y%m%d-%H%M%S", time.gmtime()))
    if not moved:
        print("nothing to reset: there is no paper account yet (the next `moneybot run` starts a fresh one)")
        return 0
    print(f"fresh paper account: the old account and its store are kept in {backup} "
          f"({', '.join(p.name for p in moved)}); the next `moneybot run` starts afresh")
    return 0


def _store_path(args) -> Path:
    from bot.cli import check_store_file, user_path

    path = user_path(args.store) if args.store else resolve_path(load_config(args.config).store.path)
    if not path.exists():
        raise UserFacingError(f"no store at {path} (nothing has been recorded yet)")
    check_store_file(path)
    return path


def _export(args) -> int:
    from core.api import Store

    if args.limit < 1:
        raise UserFacingError("--limit must be at least 1")
    if args.limit > MAX_ROWS:  # beyond SQLite's integers it was an OverflowError traceback
        raise UserFacingError(f"--limit must be between 1 and {MAX_ROWS}")
    with Store(_store_path(args)) as store:
        view = store.export(limit=args.limit)
    load_secrets_quietly()
    sys.stdout.write(mask_secrets(json.dumps(view, indent=None if args.compact else 2, sort_keys=False)))
    sys.stdout.write("\n")
    return 0


def load_secrets_quietly() -> None:
    """Read env/.env so that their secrets are masked in what this command prints (a record written by an
    older version may hold the MT5 password in an error text). A broken .env is not this command's business."""
    from core.config.settings import Secrets

    try:
        Secrets()
    except Exception:  # noqa: BLE001 - `moneybot run` reports a bad .env; an export still works without it
        pass


def _switch(args, pause: bool) -> int:
    from core.api import KillSwitch, Store

    cfg = load_config(args.config)
    with Store(_store_path(args)) as store:
        ks = KillSwitch(store, cfg)
        ks.pause(args.by, args.reason) if pause else ks.resume(args.by)
        reason = ks.block_reason()
    print(f"new entries blocked: {reason}" if reason else "new entries allowed")
    return 0


def _pause(args) -> int:
    return _switch(args, True)


def _resume(args) -> int:
    return _switch(args, False)
