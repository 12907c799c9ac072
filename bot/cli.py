"""The `moneybot` console script.

Sub-commands live in `bot/cli_*.py` modules, each exposing `register(subparsers)`, so features can add
commands without editing one shared file. A `UserFacingError` (or `ConfigError`) becomes one clear
line on stderr and exit code 2: a trader never sees a traceback for bad input. An `OSError` (a folder
that cannot be created, a full disk) is one line and exit code 1.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import math
import os
import pkgutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import bot
from core.config.model import ConfigError, resolve_path
from core.config.settings import mask_secrets
from core.domain.exceptions import UserFacingError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="moneybot", description="Range-scalping assistant for MetaTrader 5")
    parser.add_argument("--config", help="path to the JSON config (default: config/range_scalping.json)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(bot.__path__), key=lambda m: m.name):
        if info.name.startswith("cli_"):
            importlib.import_module(f"bot.{info.name}").register(sub)
    return parser


def user_path(text: str) -> Path:
    """A path typed on the command line, relative to the folder the command runs in like any shell tool's
    (config values stay relative to the project root, `core.config.model.resolve_path`): `--data bars.csv`
    used to look for <project root>/bars.csv and answer "file not found" for a file right there. A
    relative path that exists only under the project root is still found there, as before."""
    if "${MARKET_DATA}" in text:
        return resolve_path(text)
    p = Path(text).expanduser()
    if p.is_absolute():
        return p
    here = Path.cwd() / p
    if here.exists():
        return here
    root = resolve_path(text)
    return root if root.exists() else here


def check_store_file(path: Path) -> None:
    """Refuse an existing database that is not a MoneyBot store before `Store` migrates it: `--store
    data/paper_broker.sqlite` (the paper account, right next to the store) had the store's tables added."""
    import contextlib
    import sqlite3

    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            tables = sorted(r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                            if not r[0].startswith("sqlite_"))
    except sqlite3.DatabaseError:
        return  # not SQLite at all: the Store says so itself
    if tables and "proposals" not in tables:
        shown = ", ".join(tables[:6]) + (", …" if len(tables) > 6 else "")
        raise UserFacingError(f"{path} is not a MoneyBot store (its tables: {shown}); the store is the config's "
                              "store.path, data/moneybot.sqlite by default")


def usable_time(t: float) -> bool:
    """Epoch seconds a calendar can show: float() reads 'nan' and '1e300', datetime cannot, and such a
    value used to surface much later as an OverflowError traceback."""
    if not math.isfinite(t):
        return False
    try:
        datetime.fromtimestamp(t, UTC)
    except (OverflowError, OSError, ValueError):
        return False
    return True


def time_option(text: str | None, option: str) -> float | None:
    """A date/time option (`--from`, `--replay-from`, ...) as epoch seconds, or one clear line."""
    from core.api import parse_when

    t = parse_when(text)
    if t is not None and not usable_time(t):
        raise UserFacingError(f"{option}: '{str(text).strip()}' is not a time I can use: "
                              "give a UTC date like 2025-06-02T10:00 or epoch seconds.")
    return t


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # `moneybot state export | head`: the reader has all it wanted; no traceback for that. stdout is
        # pointed at /dev/null so the interpreter's final flush does not complain a second time.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ConfigError as e:
        print(mask_secrets(f"error: {e}"), file=sys.stderr)
        return 2
    except UserFacingError as e:
        print(mask_secrets(f"error: {e.message}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise  # main() ends quietly on it
    except OSError as e:
        # a folder that cannot be created, a full disk: the system's words and the path, not a traceback
        # (the log keeps it: data/logs/moneybot.log under `run`, -v elsewhere); 1, not 2: the command line was fine
        logging.getLogger(__name__).info("command failed", exc_info=True)
        where = f"{e.filename}: " if e.filename else ""
        print(mask_secrets(f"error: {where}{e.strerror or str(e) or type(e).__name__}"), file=sys.stderr)  # a bare TimeoutError()
        return 1


if __name__ == "__main__":
    sys.exit(main())
