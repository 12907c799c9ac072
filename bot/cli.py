"""The `moneybot` console script.

Sub-commands live in `bot/cli_*.py` modules, each exposing `register(subparsers)`, so features can add
commands without editing one shared file. A `UserFacingError` (or `ConfigError`) becomes one clear
line on stderr and exit code 2: a trader never sees a traceback for bad input.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys

import bot
from core.config import ConfigError
from core.exceptions import UserFacingError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="moneybot", description="Range-scalping assistant for MetaTrader 5")
    parser.add_argument("--config", help="path to the JSON config (default: config/range_scalping.json)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(bot.__path__), key=lambda m: m.name):
        if info.name.startswith("cli_"):
            importlib.import_module(f"bot.{info.name}").register(sub)
    return parser


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
        print(f"error: {e}", file=sys.stderr)
        return 2
    except UserFacingError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
