"""`moneybot run` (what `make run` calls): the core service plus console chat, Telegram and Discord."""
from __future__ import annotations

import asyncio


def register(sub) -> None:
    p = sub.add_parser("run", help="start MoneyBot: paper/MT5 broker, monitor, console chat (+ Telegram/Discord)")
    p.add_argument("--no-console", action="store_true", help="do not read commands from stdin")
    p.add_argument("--replay-from", metavar="WHEN",
                   help="paper broker: start the replay at this UTC time (YYYY-MM-DD[THH:MM]); "
                        "not before the paper account's history (see `moneybot state reset-paper`)")
    p.add_argument("--speed", type=float, metavar="X",
                   help="paper broker: replay speed, market seconds per wall second (default: broker.paper.speed)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from bot.file_checks import check_run_files
    from bot.runner import run_app
    from core.app import build_for_run
    from core.config.model import load_config, resolve_path
    from core.config.settings import Secrets

    cfg = load_config(args.config)
    data_dir = resolve_path(cfg.store.path).parent  # logs and charts live next to the store
    _log_to_file(data_dir / "logs" / "moneybot.log", console=not args.no_console)
    check_run_files(cfg, data_dir / "charts")  # .env, market data, chart folder: one clear line, exit 2
    secrets = _secrets(Secrets)
    clock = _replay_clock(cfg, args.replay_from, args.speed)
    service = build_for_run(cfg, secrets, clock=clock) if clock is not None else None
    return asyncio.run(run_app(cfg, secrets, console=not args.no_console, chart_dir=data_dir / "charts",
                               service=service))


def _secrets(factory):
    """Settings from the environment / .env, or one clear line naming the bad ones (never their values:
    a mistyped line may hold a token)."""
    from pydantic import ValidationError

    from core.domain.exceptions import UserFacingError

    try:
        return factory()
    except UnicodeDecodeError as e:  # Notepad's "Unicode" (UTF-16), or a Latin-1 character in a value
        from pathlib import Path

        raise UserFacingError(f"{Path('.env').resolve()} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset "
                              f"{e.start}): save it as UTF-8") from None
    except ValidationError as e:
        bad = "; ".join(
            f"MONEYBOT_{str(err['loc'][0]).upper()}: {_said(err)}" for err in e.errors() if err.get("loc")
        )
        raise UserFacingError(f"bad setting in the environment or .env: {bad}") from None


def _said(err) -> str:
    # pydantic's "unable to parse string as an integer" for `MONEYBOT_TELEGRAM_CHAT_ID=@my_group`
    if err.get("type") in ("int_parsing", "int_from_float"):
        return "must be a whole number (digits only, not a @name)"
    return err["msg"].removeprefix("Value error, ")


def _replay_clock(cfg, replay_from: str | None, speed: float | None):
    """A replay clock from --replay-from/--speed, or None for the default (see core.app.replay_clock)."""
    if replay_from is None and speed is None:
        return None
    from bot.cli import time_option
    from core.api import AcceleratedClock
    from core.app import replay_clock
    from core.domain.exceptions import UserFacingError

    if cfg.broker.kind != "paper":
        raise UserFacingError("--replay-from and --speed only apply to the paper broker (broker.kind is 'mt5').")
    if speed is not None and not (0 < speed <= 100_000):
        raise UserFacingError(f"--speed must be above 0 and at most 100000 (got {speed:g}).")
    if replay_from is not None:
        start = time_option(replay_from, "--replay-from")
        _within_data(cfg, start, replay_from)
        _after_account_history(cfg, start, replay_from)
    else:
        start = replay_clock(cfg).now()
    return AcceleratedClock(start, speed=speed if speed is not None else cfg.broker.paper.speed)


def _within_data(cfg, start: float, text: str) -> None:
    """A replay that starts where no symbol has bars replays nothing: every /scalp answered "no closed
    candles" without a word about the start time. Say where the data is instead."""
    from datetime import UTC, datetime

    from core.api import MarketData
    from core.domain.exceptions import UserFacingError
    from core.domain.timeframes import Timeframe

    md, tf = MarketData(cfg), Timeframe.parse(cfg.range_detection.timeframe)
    spans = {}
    for sym in cfg.symbols:
        try:
            c = md.candles(sym, tf)
        except UserFacingError:  # no file: the runner's fallback data takes over (core.data.bundled)
            continue
        if len(c):
            spans[sym] = (float(c["time"][0]), float(c["time"][-1]))
    if not spans or any(a <= start <= b for a, b in spans.values()):
        return

    def day(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")

    where = ", ".join(f"{s} {day(a)} to {day(b)}" for s, (a, b) in spans.items())
    raise UserFacingError(f"--replay-from {text.strip()} is outside the market data ({where}).")


def _after_account_history(cfg, start: float, text: str) -> None:
    """The paper account cannot go back before its own bookings (it resumes where it stopped): a silently
    ignored --replay-from left the trader looking at another day than the one asked for."""
    from datetime import UTC, datetime

    from core.app import paper_account_stop
    from core.domain.exceptions import UserFacingError

    stop = paper_account_stop(cfg)
    if stop is not None and start < stop:
        at = datetime.fromtimestamp(stop, UTC).strftime("%Y-%m-%d %H:%M UTC")
        raise UserFacingError(
            f"--replay-from {text.strip()} is before this paper account's history (it has replayed up to {at}). "
            "Start a fresh paper account with `moneybot state reset-paper` (the old one is kept as a backup), "
            "or leave out --replay-from to resume.")


def _log_to_file(path, *, console: bool = False) -> None:
    """Keep the console chat readable: full logs go to data/logs/moneybot.log, only errors to stderr.

    With the console chat on, core's "ALERT [...]" log lines stay out of the terminal: the console alert
    sink already prints each of those alerts as a card, and the echo printed every exit twice."""
    import logging

    root = logging.getLogger()
    for h in root.handlers:
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
            h.setLevel(max(h.level, logging.ERROR))
            h.setFormatter(_OneLine(path))  # the terminal is the trader's chat: no tracebacks there
            if console:
                h.addFilter(_not_an_alert_echo)
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


def _not_an_alert_echo(record) -> bool:
    return not (record.name == "core.ops.alerts" and str(record.msg).startswith("ALERT ["))


class _OneLine:
    """A formatter that never prints a traceback (the file log keeps it, and the line says where)."""

    def __init__(self, path=None) -> None:
        self.path = path if path is not None else "data/logs/moneybot.log"

    def format(self, record) -> str:
        return f"{record.levelname} {record.name}: {record.getMessage()} (details in {self.path})"
