"""Builds the running core from config + secrets: store, broker, alerts, error handler, kill switch, service.

One builder for the bot process, the CLI, tests and benches, so they all wire the lifecycle the same
way (the same store and the same alerts object shared by every front end in the process).
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from core.alerts import RangeScalpingAlerts
from core.authz import Authorizer
from core.clock import Clock, SystemClock
from core.config import AppConfig, load_config, resolve_path
from core.errors import ErrorHandler
from core.killswitch import KillSwitch
from core.service import Analyser, TradingService
from core.store import Store

log = logging.getLogger(__name__)


def build_paper_broker(cfg: AppConfig, clock: Clock, db_path: str | Path | None = None, symbols=None):
    """A PaperBroker replaying the configured real data files (via the factory when it exists)."""
    from core.brokers.paper import PaperBroker
    from core.brokers.paper_feed import ReplayFeed
    from core.data.catalog import MarketData

    md = MarketData(cfg)
    names = list(symbols or [s for s in cfg.symbols if cfg.symbols[s].data])
    feed = ReplayFeed(source=md, timeframes={s: md.timeframes(s) for s in names})
    pc = cfg.broker.paper
    return PaperBroker(
        {s: cfg.symbols[s] for s in names}, feed, db_path=db_path or resolve_path(pc.db_path), clock=clock,
        slippage_points=pc.slippage_points, commission_per_lot=pc.commission_per_lot, start_balance=pc.start_balance,
    )


def build_broker(cfg: AppConfig, secrets=None, clock: Clock | None = None):
    try:
        from core.brokers.factory import create_broker
    except ImportError:  # the factory is another module's job; paper works without it
        if cfg.broker.kind != "paper":
            from core.exceptions import UserFacingError

            raise UserFacingError("The MT5 broker needs core/brokers/factory.py, which is not installed.") from None
        return build_paper_broker(cfg, clock or SystemClock())
    return create_broker(cfg, secrets=secrets, clock=clock)


def default_analyser(cfg: AppConfig, broker, clock: Clock) -> Analyser | None:
    """`analyse_range_scalp_opportunity` fed from the broker port (None if the analysis module is absent)."""
    try:
        from core.analysis import analyse_range_scalp_opportunity
    except ImportError:
        return None

    async def analyse(symbol: str):
        return await asyncio.to_thread(analyse_range_scalp_opportunity, symbol, cfg=cfg, broker=broker, clock=clock)

    return analyse


def build_service(
    cfg: AppConfig | None = None,
    secrets=None,
    *,
    broker=None,
    clock: Clock | None = None,
    store: Store | None = None,
    store_path: str | Path | None = None,
    analyser: Analyser | None = None,
    sleep=None,
    authorizer: Authorizer | None = None,
) -> TradingService:
    """Everything wired, not started: call `await service.start()` (recovery, then the monitor)."""
    cfg = cfg or load_config()
    clock = clock or SystemClock()
    if secrets is None and authorizer is None:
        from core.settings import Secrets

        secrets = Secrets()
    store = store or Store(store_path or resolve_path(cfg.store.path), clock=clock)
    broker = broker or build_broker(cfg, secrets, clock)
    sleep = sleep or asyncio.sleep
    alerts = RangeScalpingAlerts(cfg, clock=clock, store=store, sleep=sleep)
    killswitch = KillSwitch(store, cfg, clock)
    errors = ErrorHandler(cfg, store, alerts, killswitch, clock, sleep=sleep)
    authz = authorizer or Authorizer.from_secrets(secrets)
    log.info("config_version %s, broker %s, store %s", cfg.short_version, getattr(broker, "name", "?"), store.path)
    return TradingService(
        cfg, store, broker, clock=clock, authorizer=authz, alerts=alerts, errors=errors, killswitch=killswitch,
        analyser=analyser or default_analyser(cfg, broker, clock), sleep=sleep,
    )
