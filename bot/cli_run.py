"""`moneybot run` (what `make run` calls): the core service plus console chat, Telegram and Discord."""
from __future__ import annotations

import asyncio


def register(sub) -> None:
    p = sub.add_parser("run", help="start MoneyBot: paper/MT5 broker, monitor, console chat (+ Telegram/Discord)")
    p.add_argument("--no-console", action="store_true", help="do not read commands from stdin")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from bot.runner import run_app
    from core.config import load_config, resolve_path
    from core.settings import Secrets

    cfg = load_config(args.config)
    data_dir = resolve_path(cfg.store.path).parent  # logs and charts live next to the store
    _log_to_file(data_dir / "logs" / "moneybot.log")
    secrets = Secrets()
    return asyncio.run(run_app(cfg, secrets, console=not args.no_console, chart_dir=data_dir / "charts"))


def _log_to_file(path) -> None:
    """Keep the console chat readable: full logs go to data/logs/moneybot.log, only errors to stderr."""
    import logging

    root = logging.getLogger()
    for h in root.handlers:
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
            h.setLevel(max(h.level, logging.ERROR))
            h.setFormatter(_OneLine())  # the terminal is the trader's chat: no tracebacks there
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        return
    fh.setLevel(logging.INFO)
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(fh)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)


class _OneLine:
    """A formatter that never prints a traceback (the file log keeps it)."""

    def format(self, record) -> str:
        return f"{record.levelname} {record.name}: {record.getMessage()} (details in data/logs/moneybot.log)"
