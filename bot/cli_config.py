"""`moneybot config check [PATH]`: a clear verdict on a config file before it is used live."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from core.config.model import (
    DEFAULT_CONFIG_PATH,
    AppConfig,
    ConfigError,
    load_config,
    resolve_path,
    shown_path,
)
from core.config.settings import mask_secrets


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
        print(mask_secrets(f"INVALID: {e}"), file=sys.stderr)
        return 2
    try:
        checked = checked_path(path)
        notes = missing_files(cfg)
    except (OSError, ValueError) as e:  # a path the system refuses to resolve: one line, never OK-then-traceback
        print(f"INVALID: config {shown_path(str(path))}: cannot check this path ({getattr(e, 'strerror', None) or e})",
              file=sys.stderr)
        return 2
    from bot.cli_state import load_secrets_quietly

    load_secrets_quietly()
    symbols = ", ".join(cfg.symbols)
    print(mask_secrets(f"OK: {checked} is valid (config_version {cfg.short_version}; symbols: {symbols})"))
    for note in notes:
        print(mask_secrets(f"note: {note}"))
    return 0


def checked_path(path: str | None) -> str:
    """The absolute path of the file `load_config(path)` read (the default, or MONEYBOT_CONFIG, when none)."""
    p = Path(path) if path else Path(os.environ.get("MONEYBOT_CONFIG", DEFAULT_CONFIG_PATH))
    return shown_path(str(p.expanduser().resolve()), 400)


def missing_files(cfg: AppConfig) -> list[str]:
    """Files the config names that are not there: valid JSON, but a typo in a path used to surface only
    later, as "file not found" in a backtest or a news check that silently stopped."""
    notes = []
    for sym, spec in cfg.symbols.items():
        for tf, text in spec.data.items():
            if not resolve_path(text).is_file():
                notes.append(f"symbols.{sym}.data.{tf}: no file at {resolve_path(text)} (the paper broker and "
                             "backtests read it)")
    calendars = {"news.calendar_path": cfg.news.calendar_path if cfg.news.enabled else None}
    for sym in cfg.symbol_overrides:
        news = cfg.for_symbol(sym).news
        if news.enabled and news.calendar_path != calendars["news.calendar_path"]:
            calendars[f"symbol_overrides.{sym}.news.calendar_path"] = news.calendar_path
    for where, text in calendars.items():
        if text and not resolve_path(text).is_file():
            notes.append(f"{where}: no file at {resolve_path(text)} (the news blackout will not be checked)")
    return notes
