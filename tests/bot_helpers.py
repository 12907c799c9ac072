"""Shared helpers for the chat-front-end tests: real candles and analyses built on them."""
from __future__ import annotations

import asyncio
import io
import queue
from contextlib import asynccontextmanager
from functools import lru_cache

import numpy as np

from core.config.loading import load_config
from core.config.paths import resolve_path
from core.data.loaders import load_candles
from core.domain.models import (
    AnalysisResult,
    CriticalGapZones,
    Direction,
    FilterResult,
    RangeStructure,
    StrategyScore,
    TouchCount,
)


@lru_cache(maxsize=4)
def real_candles(symbol: str = "XAUUSDc", tf: str = "M5") -> np.ndarray:
    cfg = load_config()
    spec = cfg.symbols[symbol]
    return load_candles(resolve_path(spec.data[tf]), tz_offset_hours=spec.data_tz_offset_hours)


def analysis_from(candles: np.ndarray, symbol: str = "XAUUSDc", passed: bool = True) -> AnalysisResult:
    """An AnalysisResult whose range is the real high/low of the last 96 bars (for rendering tests)."""
    seg = candles[-96:]
    hi, lo = float(seg["high"].max()), float(seg["low"].min())
    w = hi - lo
    rng = RangeStructure(
        symbol=symbol, timeframe="M5", range_type="session", range_high=hi, range_low=lo, range_mid=(hi + lo) / 2,
        range_width_atr=3.0, range_width_pct=w / lo * 100, atr=w / 3,
        critical_gaps=CriticalGapZones(upper_zone_start=hi - 0.2 * w, upper_zone_end=hi,
                                       lower_zone_start=lo, lower_zone_end=lo + 0.2 * w),
        touch_count=TouchCount(top=3, bottom=2), validated=True,
        start_time=float(seg["time"][0]), end_time=float(seg["time"][-1]),
    )
    strat = StrategyScore(strategy="bb_fade", direction=Direction.SHORT, entry=hi - 0.1 * w,
                          stop_loss=hi + 0.1 * w, take_profit=hi - 0.4 * w, rr=1.5, score=71)
    filters = [FilterResult(name="news", passed=True, reason="no high-impact news within 30 min")]
    if not passed:
        filters.append(FilterResult(name="session", passed=False, reason="outside allowed sessions (weekend)"))
    return AnalysisResult(symbol=symbol, timeframe="M5", as_of=float(candles["time"][-1]), range=rng,
                          passed=passed, strategies=[strat], confidence=66, filters=filters,
                          config_version="abcdef123456")


# ---------------------------------------------------------------- the real core, on real data
TRADER, VIEWER, STRANGER = 4242, 4343, 666
# Replay instants where the real analysis of XAUUSDc passes with several viable strategies (found by
# scanning the M5 file; the bar before each instant has just closed, so PaperBroker sees it). Tests take
# the first that still passes, so a retuned analysis does not silently turn them into NO TRADE tests.
XAU_TRADEABLE_AT = 1735910400 + 300
XAU_CANDIDATES = [XAU_TRADEABLE_AT, 1735921500 + 300, 1735866000 + 300, 1736397300 + 300, 1738673400 + 300]


async def _tradeable(service, clock, candidates, min_viable: int = 2) -> None:
    for at in candidates:
        clock.set(at)
        a = await service.analyse("XAUUSDc")
        if a.passed and len([s for s in a.strategies if s.viable]) >= min_viable:
            return
    raise AssertionError("no tradeable XAUUSDc instant among the candidates: rescan the data")


def config_with(tmp_path, overrides: dict):
    """The project config with `overrides` deep-merged (written to tmp_path, loaded and validated)."""
    import json

    from core.config.model import deep_merge
    from core.config.paths import DEFAULT_CONFIG_PATH

    raw = json.loads(DEFAULT_CONFIG_PATH.read_text())
    path = tmp_path / "config.json"
    path.write_text(json.dumps(deep_merge(raw, overrides)))
    return load_config(path)


async def start_core(tmp_path, at: float = XAU_TRADEABLE_AT, traders=(TRADER,), viewers=(VIEWER,), overrides=None):
    """A started TradingService: PaperBroker replaying the real files, SQLite store, FixedClock."""
    from core.app import build_for_run
    from core.domain.clock import FixedClock
    from core.trading.authz import Authorizer

    cfg = config_with(tmp_path, overrides) if overrides else load_config()
    clock = FixedClock(at)
    service = build_for_run(cfg, None, clock=clock, data_dir=tmp_path, authorizer=Authorizer(traders, viewers))
    if at == XAU_TRADEABLE_AT:
        await _tradeable(service, clock, XAU_CANDIDATES)
    await service.start()
    return service, clock


def journal_closed_trades(store, n: int, symbol: str = "XAUUSDc", first_ticket: int = 500000) -> list:
    """`n` closed trades journalled in `store`, priced from real candles (entry at a bar's close, exit six
    bars later): enough of them to make `/trades 50` longer than any chat platform's message limit."""
    from core.domain.models import ClosedTrade

    bars = real_candles(symbol)[-12 * n - 20:]
    out = []
    for i in range(n):
        a, b = bars[12 * i], bars[12 * i + 6]
        long = i % 2 == 0
        entry, exit_ = float(a["close"]), float(b["close"])
        risk = max(abs(float(a["high"]) - float(a["low"])), 0.5)
        sl = entry - risk if long else entry + risk
        move = (exit_ - entry) if long else (entry - exit_)
        out.append(store.closed.add(ClosedTrade(
            ticket=first_ticket + i, symbol=symbol, strategy="vwap_reversion" if long else "bb_fade",
            direction=Direction.LONG if long else Direction.SHORT, volume=0.01, entry_price=entry,
            exit_price=exit_, initial_sl=sl, tp=entry + (risk if long else -risk), entry_time=float(a["time"]),
            exit_time=float(b["time"]), pnl=round(move, 2), r_multiple=round(move / risk, 2),
            exit_reason="take_profit" if move > 0 else "stop_loss")))
    return out


@asynccontextmanager
async def discord_world(tmp_path):
    """simcord env + users around the real MoneyBotClient; the core is built once the users' (random)
    Discord ids are known. Yields env, bot, router, service, clock, desk, alerts, trader, viewer, stranger."""
    import simcord

    from bot.commands import CommandRouter
    from bot.discord_bot import MoneyBotClient
    from bot.runner import candle_source
    from core.domain.models import Alert
    from core.trading.authz import Authorizer

    cfg = load_config()
    router = CommandRouter(None, cfg)
    bot = MoneyBotClient(router)
    async with simcord.run(bot) as env:
        guild = env.create_guild()
        desk = guild.create_text_channel("desk")
        alerts = guild.create_text_channel("alerts")
        trader = guild.add_member(env.create_user("trader"))
        viewer = guild.add_member(env.create_user("viewer"))
        stranger = guild.add_member(env.create_user("stranger"))
        service, clock = await start_core(tmp_path)
        service.authz = service.execution.authz = Authorizer([trader.id], [viewer.id])
        router.service = service
        router._candles = candle_source(service)
        bot.alert_channel_id = alerts.id
        service.alerts.register_sink("discord", bot.on_alert)
        # core starts a sink's delivery worker on its first alert; start it here, from the test, so
        # simcord does not count that long-lived task as unfinished work of a button click
        service.alerts.send(Alert(kind="startup", severity="high", title="MoneyBot online", text="ready",
                                  created_at=clock.now()))
        await service.alerts.drain()
        await env.settle()
        assert "MoneyBot online" in alerts.last_message.content
        try:
            yield env, bot, router, service, clock, desk, alerts, trader, viewer, stranger
        finally:
            await service.stop()


class OpenStdin(io.StringIO):
    """A console stdin that stays open until the test feeds it: `readline` blocks until a line (or "" for
    EOF) is fed, as a terminal's would."""

    def __init__(self) -> None:
        super().__init__()
        self.q: queue.Queue[str] = queue.Queue()

    def feed(self, line: str) -> None:
        self.q.put(line)

    def readline(self, *a) -> str:
        return self.q.get()


async def until(pred, timeout: float = 20.0) -> None:
    """Poll `pred` on the event loop (other tasks run meanwhile) until it is true; TimeoutError if not."""
    for _ in range(int(timeout / 0.02)):
        if pred():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError
