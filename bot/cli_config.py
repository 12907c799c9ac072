"""`moneybot config check [PATH]`: a clear verdict on a config file before it is used live."""
from __future__ import annotations

import sys

from core.config import ConfigError, load_config


def register(sub) -> None:
    p = sub.add_parser("config", help="inspect or check the configuration")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    check = csub.add_parser("check", help="validate a config file and report every problem")
    check.add_argument("path", nargs="?", help="config file (default: the active one)")
    check.set_defaults(func=_check)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _check(args) -> int:
    path = args.path or args.config
    try:
        cfg = load_config(path)
    except ConfigError as e:
        print(f"INVALID: {e}", file=sys.stderr)
        return 2
    symbols = ", ".join(cfg.symbols)
    print(f"OK: {path or 'config/range_scalping.json'} is valid (config_version {cfg.short_version}; symbols: {symbols})")
    return 0
