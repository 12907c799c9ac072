"""`moneybot run` (what `make run` calls): the core service plus console chat, Telegram and Discord."""
from __future__ import annotations

import asyncio


def register(sub) -> None:
    p = sub.add_parser("run", help="start MoneyBot: paper/MT5 broker, monitor, console chat (+ Telegram/Discord)")
    p.add_argument("--no-console", action="store_true", help="do not read commands from stdin")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from bot.runner import run_app
    from core.config import load_config
    from core.settings import Secrets

    cfg = load_config(args.config)
    secrets = Secrets()
    return asyncio.run(run_app(cfg, secrets, console=not args.no_console))
