"""Builds the configured broker: `broker.kind` = "paper" (default) or "mt5".

Setup problems a trader can fix (no bridge configured on Linux, the MetaTrader5 package missing on
Windows, the bridge not answering) become one-line `UserFacingError`s saying what to do, never a
traceback.
"""
from __future__ import annotations

import sys
from pathlib import Path

from core.brokers.base import Broker, BrokerConnectionError
from core.config.model import AppConfig
from core.config.ops import ErrorPolicy
from core.config.paths import resolve_path
from core.config.settings import Secrets
from core.domain.clock import Clock
from core.domain.exceptions import UserFacingError

BRIDGE_HELP = (
    "broker.kind is 'mt5', but on Linux MetaTrader 5 runs under Wine and is reached through an rpyc bridge, "
    "and none is configured. Inside Wine: `pip install MetaTrader5 pymt5linux`, start the terminal, then run "
    "`python -m pymt5linux --host 0.0.0.0 --port 18812 <path\\to\\python.exe>`. Here (the repo root): "
    "`.venv/bin/pip install -e '.[bridge]'` (rpyc) and set MONEYBOT_MT5_BRIDGE_HOST (e.g. 127.0.0.1) and "
    "MONEYBOT_MT5_BRIDGE_PORT (default 18812) in the environment or .env. Or set broker.kind to 'paper'."
)


def make_broker(cfg: AppConfig, secrets: Secrets | None = None, clock: Clock | None = None, *,
                db_path: str | Path | None = None, platform: str | None = None) -> Broker:
    """The broker the config asks for. `clock` is the paper replay clock (a FixedClock = step mode)."""
    if cfg.broker.kind == "paper":
        return _paper(cfg, clock, db_path)
    return _mt5(cfg, secrets or Secrets(), clock, platform or sys.platform)



def _paper(cfg: AppConfig, clock: Clock | None, db_path: str | Path | None) -> Broker:
    from core.brokers.paper.feed import AcceleratedClock, ReplayFeed
    from core.data.catalog import MarketData

    md = MarketData(cfg)
    names = [s for s in cfg.symbols if cfg.symbols[s].data]
    feed = ReplayFeed(source=md, timeframes={s: md.timeframes(s) for s in names})
    if clock is None:
        clock = AcceleratedClock(_default_start(md, names), speed=cfg.broker.paper.speed)
    return _paper_on(cfg, feed, names, clock, db_path)


def paper_broker_on_bars(cfg: AppConfig, bars: dict, clock: Clock, db_path: str | Path | None) -> Broker:
    """A PaperBroker over bars already loaded ({symbol: {timeframe: candles}}): the bundled fallback data
    of a fresh clone, which no config file names."""
    from core.brokers.paper.feed import ReplayFeed

    return _paper_on(cfg, ReplayFeed(bars), list(bars), clock, db_path)


def _paper_on(cfg: AppConfig, feed, names: list[str], clock: Clock, db_path: str | Path | None) -> Broker:
    from core.brokers.paper.broker import PaperBroker

    pc = cfg.broker.paper
    return PaperBroker({s: cfg.symbols[s] for s in names}, feed, db_path=db_path or resolve_path(pc.db_path),
                       clock=clock, slippage_points=pc.slippage_points, commission_per_lot=pc.commission_per_lot,
                       start_balance=pc.start_balance)


def _default_start(md, names: list[str]) -> float:
    """A week into the data of the first symbol that has any: enough history for the range detector."""
    for sym in names:
        try:
            tfs = md.timeframes(sym)
            bars = md.candles(sym, tfs[0]) if tfs else None
        except UserFacingError:
            continue
        if bars is not None and len(bars):
            return float(bars["time"][0]) + 7 * 86_400
    raise UserFacingError("The paper broker has no market data: check symbols.*.data in the config.")


def _mt5(cfg: AppConfig, secrets: Secrets, clock: Clock | None, platform: str) -> Broker:
    from core.brokers.mt5.broker import MT5Broker, RetryPolicy

    def policy(name: str, default: RetryPolicy) -> RetryPolicy:
        p: ErrorPolicy | None = cfg.error_handling.get(name)
        return RetryPolicy(p.max_retries, p.retry_interval) if p else default

    opts = dict(
        login=secrets.mt5_login,
        password=secrets.mt5_password.get_secret_value() if secrets.mt5_password else None,
        server=secrets.mt5_server, path=cfg.broker.mt5.path, timeout_ms=cfg.broker.mt5.timeout_ms,
        connection_policy=policy("mt5_connection_lost", RetryPolicy(3, 5.0)),
        order_policy=policy("order_execution_fails", RetryPolicy(2, 1.0)),
        clock=clock, server_utc_offset_hours=cfg.broker.mt5.server_utc_offset_hours,
    )
    host = secrets.mt5_bridge_host
    if host:
        try:
            return MT5Broker.bridge(host, secrets.mt5_bridge_port, **opts)
        except ImportError:  # rpyc, imported lazily by core.brokers.mt5.bridge
            raise UserFacingError(
                "The MT5 bridge needs rpyc: .venv/bin/pip install -e '.[bridge]' (in the repo root).") from None
        except BrokerConnectionError as e:
            raise UserFacingError(
                f"{e.message}. Is the pymt5linux server running in Wine (python -m pymt5linux --host 0.0.0.0 "
                f"--port {secrets.mt5_bridge_port} <python.exe>)?") from None
    if platform != "win32":
        raise UserFacingError(BRIDGE_HELP)
    try:
        return MT5Broker.local(**opts)
    except ImportError:
        raise UserFacingError(
            "broker.kind is 'mt5' but the MetaTrader5 package is not installed: pip install 'moneybot[mt5]'."
        ) from None
