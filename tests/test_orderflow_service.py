"""The wired service: order flow and the live calendar from the stand-in, /health, the card, the ErrorHandler.

A paper broker supplies the candles, but the config says a live broker, so the MarketContext runs its
live sources (the ccxt exchange and the calendar) against the 127.0.0.1 stand-in.
"""
from __future__ import annotations

import asyncio
import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import lifecycle_helpers as k
import pytest
from binance_standin import CALENDAR_FILE, Standin

from bot.health_text import health_text
from bot.presenter import analysis_card
from core.app import build_service
from core.config.paths import market_data_dir
from core.domain.clock import FixedClock
from core.trading.authz import Authorizer

pytestmark = pytest.mark.timeout(90)  # a hung socket fails here, not after the suite default


async def _until(pred, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        assert loop.time() < end, "condition not reached"
        await asyncio.sleep(0.02)


async def _service(tmp_path, standin, *, paper: bool):
    cfg = k.config({
        "broker": {"kind": "paper" if paper else "mt5"},
        "orderflow_feeds": {"api_url": standin.url + "/api/v3", "symbols": {"BTCUSDc": "BTC/USDT"},
                            "refresh_seconds": 0.2, "timeout_seconds": 5},
        "news": {"live_url": standin.url + "/calendar.json", "live_cache_path": str(tmp_path / "cal.json"),
                 "live_refresh_minutes": 1},
    })
    at = k.common_time(cfg, symbols=("BTCUSDc",))
    clock = FixedClock(at + 60)
    standin.end_at = clock.now()
    broker = k.paper_broker(cfg, tmp_path / "paper.sqlite", clock, symbols=("BTCUSDc",))
    broker.connect()
    svc = build_service(cfg, broker=broker, clock=clock, store_path=tmp_path / "s.sqlite", authorizer=Authorizer(),
                        sleep=k.no_sleep)
    await svc.start(monitor=False)
    return svc


def _calendar_around(t: float) -> bytes:
    """The recorded FF week, its dates moved (whole weeks) to the week of `t`: a live answer for the replay time."""
    raw = json.loads((Path(market_data_dir()) / CALENDAR_FILE).read_text())
    events = raw["events"]
    first = datetime.fromisoformat(events[0]["date"])
    weeks = math.floor((t - first.timestamp()) / (7 * 86400))
    for e in events:
        e["date"] = (datetime.fromisoformat(e["date"]) + timedelta(weeks=weeks)).isoformat()
    return json.dumps(events).encode()  # the live feed is a bare list, as Forex Factory serves it


async def test_orderflow_live_service_card_health_and_error_policy(tmp_path):
    at = k.common_time(k.config(), symbols=("BTCUSDc",))
    with Standin(calendar=_calendar_around(at)) as standin:
        svc = await _service(tmp_path, standin, paper=False)
        try:
            await _until(lambda: svc.market.flow("BTCUSDc")[0] is not None and svc.market.calendar()[0] is not None)
            a = await svc.analyse("BTCUSDc")
            dq = next(f for f in a.filters if f.name == "data_quality")
            assert dq.details["orderflow"]["available"] and dq.details["orderflow"]["source"] == "Binance BTC/USDT"
            card = analysis_card(a)
            assert "order flow Binance BTC/USDT 2s old" in card
            # the calendar is downloaded at the replay clock's time, so its age on the card is 0
            assert "news calendar 0s old" in card
            h = svc.health()
            assert h.data_sources["orderflow BTCUSDc"]["problem"] is None
            assert h.data_sources["news calendar"]["age_seconds"] == 0
            assert "news calendar: 0s old" in health_text(h)
            # the exchange goes into maintenance: a warning in /health, one ErrorHandler event, no crash
            standin.mode = "maintenance"
            await _until(lambda: svc.market.flow("BTCUSDc")[1] is not None)
            h = svc.health()
            assert not h.ok and any("maintenance" in p for p in h.problems)
            events = svc.store.errors.recent(10, "data_source_unavailable")
            assert len(events) == 1 and "maintenance" in events[0].message
            snap, why = svc.market.flow("BTCUSDc")
            assert snap is not None and "using the last good snapshot" in why  # the policy's use_last_known_data
            a2 = await svc.analyse("BTCUSDc")
            assert any("maintenance" in w for w in a2.warnings)
            assert svc.health().fallbacks_used == {} or "orderflow" not in str(svc.health().fallbacks_used)
        finally:
            await svc.stop()
            svc.store.close()
        assert svc.market._tasks == []


async def test_orderflow_paper_service_names_the_replay_gap(tmp_path):
    with Standin() as standin:
        svc = await _service(tmp_path, standin, paper=True)
        try:
            assert svc.market.exchange is None and svc.market.news is None  # no live calls in a replay
            a = await svc.analyse("BTCUSDc")
            assert any("no recorded order flow covers" in w for w in a.warnings)
            assert "order flow not used" in analysis_card(a)
            assert svc.health().fallbacks_used.get("orderflow:skip_confirmation") == 1
            assert standin.requests == []
        finally:
            await svc.stop()
            svc.store.close()
