"""The one composition root: config + secrets in, a wired TradingService out.

Store, broker, alerts, ErrorHandler, kill switch, monitor and service are all built here and nowhere
else, so the bot process, the CLI, tests and benches wire the lifecycle the same way (one store and
one alerts object shared by every front end in the process). Each component gets the config it reads.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path
from typing import Any

from core.analysis.cache import ANALYSIS_POOL
from core.analysis.facade import analyse_range_scalp_opportunity
from core.brokers.base import Broker
from core.brokers.factory import make_broker, paper_broker_on_bars
from core.brokers.paper.feed import AcceleratedClock
from core.config.loading import load_config
from core.config.model import AppConfig
from core.config.paths import market_data_dir, resolve_path
from core.data import bundled
from core.data.catalog import MarketData
from core.data.sources.market_context import MarketContext
from core.domain.clock import Clock, SystemClock
from core.domain.exceptions import UserFacingError
from core.domain.timeframes import Timeframe
from core.exits.executor import ExitExecutor
from core.exits.late_fills import LateFillWatch
from core.exits.manager import RangeScalpingExitManager
from core.exits.monitor import Monitor
from core.ops.alerts import RangeScalpingAlerts
from core.ops.error_handler import ErrorHandler
from core.ops.notify import Notifier
from core.service import Analyser, TradingService
from core.store import Store
from core.trading.authz import Authorizer
from core.trading.execution import ExecutionEngine
from core.trading.killswitch import KillSwitch
from core.trading.recovery import Reconciler

log = logging.getLogger(__name__)


def default_analyser(cfg: AppConfig, broker: Broker, clock: Clock, market: MarketContext | None = None) -> Analyser:
    """`analyse_range_scalp_opportunity` fed from the broker port, off the event loop (it is CPU work).

    With a `MarketContext` the order flow and the live calendar come from its latest snapshots (never a
    network call here); without a live calendar copy the configured recorded one is read as before."""

    async def analyse(symbol: str):
        kw: dict[str, Any] = {}
        if market is not None:
            kw["orderflow"], kw["orderflow_error"] = market.flow(symbol)
            cal, err = market.calendar()
            if cal is not None:
                kw["news"], kw["news_error"] = cal, err
        # its own pool: a flood of /scalp must not queue ahead of /close's broker calls (default executor)
        result = await asyncio.get_running_loop().run_in_executor(
            ANALYSIS_POOL, functools.partial(analyse_range_scalp_opportunity, symbol, broker, cfg, clock=clock, **kw))
        if market is not None:
            market.record(result)
        return result

    analyse.cacheable = True  # same inputs within one closed bar: TradingService caches it per bar
    return analyse


def market_context(cfg: AppConfig, broker: Broker, clock: Clock, errors: ErrorHandler | None) -> MarketContext:
    """Order flow + live calendar sources; each new failure goes through the `data_source_unavailable` policy."""

    def report(source: str, message: str, symbol: str | None) -> None:
        if errors is not None:
            errors.handle("data_source_unavailable", f"{source}: {message}",
                          context={"symbol": symbol, "source": source})

    return MarketContext(cfg, clock, broker=broker, paper=cfg.broker.kind == "paper", report=report)


def build_service(
    cfg: AppConfig | None = None,
    secrets=None,
    *,
    broker: Broker | None = None,
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
        from core.config.settings import Secrets

        secrets = Secrets()
    store = store or Store(store_path or resolve_path(cfg.store.path), clock=clock)
    broker = broker or make_broker(cfg, secrets, clock)
    sleep = sleep or asyncio.sleep
    alerts = RangeScalpingAlerts(cfg, clock=clock, store=store, sleep=sleep)
    killswitch = KillSwitch(store, cfg, clock)
    errors = ErrorHandler(cfg, store, alerts, killswitch, clock, sleep=sleep)
    authz = authorizer or Authorizer.from_secrets(secrets)
    notifier = Notifier(cfg, store=store, clock=clock, alerts=alerts, errors=errors, killswitch=killswitch)
    exits = RangeScalpingExitManager(store=store, clock=clock)
    execution = ExecutionEngine(cfg, store, broker, exits, notifier, clock, authz, sleep=sleep)
    executor = ExitExecutor(cfg, broker, store, exits, notifier, sleep=sleep)
    reconciler = Reconciler(cfg, store, broker, exits, execution, executor, notifier, clock)
    monitor = Monitor(cfg, broker, exits, executor, notifier, clock, sleep=sleep,
                      late_fills=LateFillWatch(cfg, broker, exits, executor, notifier, clock, engine=execution),
                      executing=execution.in_flight, reconcile=reconciler.again)
    log.info("config_version %s, broker %s, store %s", cfg.short_version, getattr(broker, "name", "?"), store.path)
    market = market_context(cfg, broker, clock, errors) if analyser is None else None
    return TradingService(
        cfg, store, broker, clock=clock, authorizer=authz, alerts=alerts, errors=errors, killswitch=killswitch,
        notifier=notifier, exits=exits, execution=execution, executor=executor, monitor=monitor,
        reconciler=reconciler, analyser=analyser or default_analyser(cfg, broker, clock, market), market=market,
    )


def build_for_run(cfg: AppConfig, secrets, *, clock: Clock | None = None, data_dir: Path | None = None,
                  authorizer: Authorizer | None = None) -> TradingService:
    """The one TradingService of a `moneybot run` process: a PaperBroker replay when the config says paper
    (on the bundled EUR/USD bars when no configured data file exists), else the MT5 broker."""
    kw: dict[str, Any] = {}
    if data_dir is not None:
        kw["store_path"] = Path(data_dir) / "moneybot.sqlite"
    db = Path(data_dir) / "paper_broker.sqlite" if data_dir is not None else None
    if (cfg.broker.kind == "paper" and not bundled.configured_data_exists(cfg)
            and bundled.backtesting_eurusd_path() is not None):
        log.warning("no configured market data found: replaying the EURUSD H1 bars bundled with `backtesting`")
        cfg = bundled.fallback_config(cfg)
        bars = bundled.load_backtesting_eurusd(bundled.backtesting_eurusd_path())
        # start 500 bars in (enough history for the analysis), at the configured replay speed
        clock = clock or AcceleratedClock(float(bars["time"][500]), speed=cfg.broker.paper.speed)
        broker = paper_broker_on_bars(cfg, {bundled.SYMBOL: {bundled.TIMEFRAME: bars}}, clock,
                                      db or resolve_path(cfg.broker.paper.db_path))
    else:
        clock = clock or replay_clock(cfg)
        broker = make_broker(cfg, secrets, clock, db_path=db)
    return build_service(cfg, secrets, broker=broker, clock=clock, authorizer=authorizer, **kw)


def replay_clock(cfg: AppConfig) -> Clock:
    """PaperBroker replays old files: start the replay where the most symbols can be traded, at config speed.

    A symbol can be traded where its analysis bars have history and its finest bars (what quotes and fills
    come from) exist too: an M1 file shorter than the M5 one would otherwise leave a clock at which /scalp
    answers with a card whose Approve can only be refused, for want of a price."""
    if cfg.broker.kind != "paper":
        return SystemClock()
    md = MarketData(cfg)
    tf = Timeframe.parse(cfg.range_detection.timeframe)
    spans = []
    for sym in cfg.symbols:
        try:
            c = md.candles(sym, tf)
            finest = md.timeframes(sym)[0]
            priced = c if finest == tf else md.candles(sym, finest)
        except Exception:  # a missing file for one symbol must not stop the others
            continue
        if len(c) > 600 and len(priced):
            start = max(float(c["time"][500]), float(priced["time"][0]))
            end = min(float(c["time"][-100]), float(priced["time"][-1]))
            if start <= end:
                spans.append((start, end))
    if not spans:
        return SystemClock()
    best = max((s for s, _ in spans), key=lambda t: (sum(a <= t <= b for a, b in spans), t))
    return AcceleratedClock(best, speed=cfg.broker.paper.speed)


def bundled_data_notice(cfg: AppConfig) -> str | None:
    """The console's first words on a replay with no configured data file: a newcomer typing the README's
    `/scalp XAUUSDc` would otherwise only learn that the symbol is unknown, not why or how to fix it."""
    if cfg.broker.kind != "paper" or bundled.configured_data_exists(cfg):
        return None
    return (f"No market data in {market_data_dir()}: replaying the EUR/USD H1 bars bundled with the "
            "backtesting package. Put the data there or set MONEYBOT_MARKET_DATA to its folder.")


def paper_db_path(cfg: AppConfig) -> Path:
    return resolve_path(cfg.broker.paper.db_path)


def paper_account_stop(cfg: AppConfig) -> float | None:
    """Where the paper account's replay stopped (its last booking), or None for a fresh account. Read
    only: asking must not create the file."""
    import sqlite3

    path = paper_db_path(cfg)
    if not path.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = con.execute("SELECT value FROM meta WHERE key='clock'").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    return float(row[0]) if row else None


def reset_paper_account(cfg: AppConfig, stamp: str) -> tuple[Path, list[Path]]:
    """A fresh paper account: the account file and the store that journals its trades (they belong
    together: the store's open trades point at the account's positions) move into a backup folder
    `data/backup-<stamp>/`, nothing is deleted. The next `moneybot run` starts both afresh."""
    import shutil

    if cfg.broker.kind != "paper":
        raise UserFacingError("reset-paper is for the paper broker (broker.kind in this config is "
                              f"'{cfg.broker.kind}'): a real account is never reset from here.")
    files = []
    for db in (paper_db_path(cfg), resolve_path(cfg.store.path)):
        files += [Path(str(db) + ext) for ext in ("", "-wal", "-shm") if Path(str(db) + ext).exists()]
    backup = paper_db_path(cfg).parent / f"backup-{stamp}"
    if not files:
        return backup, []
    backup.mkdir(parents=True, exist_ok=False)
    for f in files:
        shutil.move(str(f), str(backup / f.name))
    return backup, [backup / f.name for f in files]


def start_banner(service: TradingService) -> str:
    """What a trader must know before the first /scalp: which clock the bot trades (a paper replay of old
    data, and where it stands) and, per symbol, the span its data covers. A symbol without bars at the
    replay time would otherwise answer every /scalp with "no closed candles" and nothing about why."""
    from datetime import UTC, datetime

    from core.ops.health import symbol_data

    broker = service.broker
    if not callable(getattr(broker, "data_span", None)):
        return ""
    now = datetime.fromtimestamp(service.clock.now(), UTC).strftime("%Y-%m-%d %H:%M UTC")
    speed = float(getattr(service.clock, "speed", 1.0) or 1.0)
    head = f"Replay clock: {now} at {speed:g}× (paper broker on old market data, not the live market)"
    resumed = getattr(broker, "resumed_at", None)
    if resumed is not None:
        head += "; resumed where this paper account stopped"
    lines = [head]
    for sym, d in symbol_data(service).items():
        lines.append(f"  {sym}: {'✅' if d.at_clock else '❌'} {d.describe()}")
    return "\n".join(lines)


__all__ = ["build_for_run", "build_service", "bundled_data_notice", "default_analyser",
           "paper_account_stop", "replay_clock", "reset_paper_account", "start_banner"]
