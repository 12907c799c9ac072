"""RangeScalpingAlerts: routing per severity, dedup window, retry with backoff, non-blocking delivery,
thread hand-off, buffering before a loop exists, and the persisted alert log."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from core.config.loading import load_config
from core.domain.models import Alert
from core.ops.alerts import RangeScalpingAlerts, redact_secrets
from core.store import Store
from tests.store_helpers import make_trade


class Backoff:
    def __init__(self):
        self.calls: list[float] = []

    async def __call__(self, s):
        self.calls.append(s)
        await asyncio.sleep(0)


@pytest.fixture
def backoff():
    return Backoff()


@pytest.fixture
def alerts(clock, store, backoff):
    return RangeScalpingAlerts(load_config(), clock, store, sleep=backoff)


def recorder(bucket: list):
    async def sink(alert: Alert):
        bucket.append(alert)
    return sink


def mk(clock, severity="high", text="t", ticket=1, key=""):
    return Alert(kind="system_error", severity=severity, title="x", text=text, ticket=ticket, created_at=clock.now(),
                 dedup_key=key)


async def test_routing_per_severity(alerts, clock):
    got = {n: [] for n in ("console", "telegram", "discord", "webhook")}
    for name, bucket in got.items():
        alerts.register_sink(name, recorder(bucket))
    alerts.send(mk(clock, "critical", "c"))
    alerts.send(mk(clock, "high", "h"))
    alerts.send(mk(clock, "medium", "m"))
    alerts.send(mk(clock, "info", "i"))
    await alerts.drain()
    assert [a.text for a in got["console"]] == ["c", "h", "m"]
    assert [a.text for a in got["telegram"]] == ["c", "h"]
    assert [a.text for a in got["discord"]] == ["c", "h"]
    assert got["webhook"] == []  # registered, but no severity routes to it
    await alerts.close()


async def test_dedup_within_window_then_again_after(alerts, clock):
    got = []
    alerts.register_sink("telegram", recorder(got))
    assert alerts.send(mk(clock, text="same"))
    clock.advance(100)
    assert not alerts.send(mk(clock, text="same"))
    assert alerts.send(mk(clock, text="same", ticket=2))  # another ticket is another alert
    assert alerts.send(mk(clock, text="other"))
    assert alerts.send(mk(clock, text="k1", key="inval:1"))
    assert not alerts.send(mk(clock, text="k2 differs but same key", key="inval:1"))
    clock.advance(201)  # 301 s after the first
    assert alerts.send(mk(clock, text="same"))
    await alerts.drain()
    assert [a.text for a in got] == ["same", "same", "other", "k1", "same"]
    assert alerts.suppressed == 2


async def test_failing_sink_is_retried_with_exponential_backoff(alerts, clock, backoff, store):
    calls = []

    async def flaky(alert):
        calls.append(alert)
        if len(calls) < 3:
            raise ConnectionError("telegram 502")

    alerts.register_sink("telegram", flaky)
    alerts.send(mk(clock))
    await alerts.drain()
    assert len(calls) == 3 and backoff.calls == [0.5, 1.0]
    [res] = alerts.results
    assert res.ok and res.attempts == 3
    [row] = store.alerts.recent()
    assert row["status"] == "delivered" and row["deliveries"] == {"telegram": "delivered"}


async def test_final_failure_is_logged_and_recorded(alerts, clock, backoff, store, caplog):
    async def dead(alert):
        raise RuntimeError("bot token=abc123secret revoked")

    alerts.register_sink("telegram", dead)
    alerts.send(mk(clock, "critical"))
    await alerts.drain()
    assert backoff.calls == [0.5, 1.0, 2.0]
    [res] = alerts.results
    assert not res.ok and res.attempts == 4 and "abc123secret" not in res.error
    [row] = store.alerts.recent()
    assert row["status"] == "failed" and row["deliveries"]["telegram"].startswith("failed after 4")
    assert "NOT delivered to telegram" in caplog.text and "abc123secret" not in caplog.text


async def test_hanging_sink_never_blocks_send_or_other_sinks(clock, store):
    alerts = RangeScalpingAlerts(load_config(), clock, store, sleep=lambda s: asyncio.sleep(0),
                                 sink_timeout_seconds=0.02)
    alerts.cfg.sink_max_retries = 1
    fast = []
    release = asyncio.Event()

    async def hang(alert):
        await release.wait()

    alerts.register_sink("discord", hang)
    alerts.register_sink("telegram", recorder(fast))
    t = time.perf_counter()
    for i in range(10):
        assert alerts.send(mk(clock, text=f"a{i}"))
    assert time.perf_counter() - t < 1.0  # send() only queues
    for _ in range(200):
        if len(fast) == 10:
            break
        await asyncio.sleep(0.005)
    assert len(fast) == 10  # telegram got everything...
    assert sum(r.sink == "discord" for r in alerts.results) < 10  # ...while discord is still stuck
    await asyncio.wait_for(alerts.drain(), 10)
    assert sum(not r.ok and r.sink == "discord" for r in alerts.results) == 10
    await alerts.close()


async def test_send_from_worker_threads(alerts, clock):
    got = []
    alerts.register_sink("telegram", recorder(got))
    alerts.attach()

    def worker(n):
        for i in range(25):
            alerts.send(mk(clock, text=f"{n}-{i}"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    await asyncio.to_thread(lambda: [th.join() for th in threads])
    await alerts.drain()
    assert sorted(a.text for a in got) == sorted(f"{n}-{i}" for n in range(4) for i in range(25))


def test_alerts_sent_before_a_loop_exists_are_buffered(alerts, clock):
    got = []
    alerts.register_sink("console", recorder(got))
    alerts.send(mk(clock, "medium", "early"))  # no running loop yet (e.g. during recovery)
    assert got == []

    async def later():
        alerts.attach()
        await alerts.drain()

    asyncio.run(later())
    assert [a.text for a in got] == ["early"]


async def test_named_alerts_carry_data_for_charts(alerts, clock):
    got = []
    alerts.register_sink("telegram", recorder(got))
    trade = make_trade(5)
    alerts.alert_exit_failed(5, trade.symbol, "requote", trade=trade, attempts=4)
    alerts.alert_exit_executed(trade, 100.05, "take profit", pnl=0.0075)
    alerts.alert_auto_disabled("3 critical errors in the last hour")
    alerts.alert_system_error("mt5_connection_lost", "down", severity="critical")
    await alerts.drain()
    kinds = [a.kind for a in got]
    assert kinds == ["exit_failed", "exit_executed", "auto_disabled", "system_error"]
    failed, executed = got[:2]
    assert failed.trade.range_data is not None and failed.trade.range_data.range_high == 101.0
    assert "MANUAL CLOSE" in failed.text and failed.trade.ticket == 5
    assert "+1.50 R" in executed.text and executed.exit_price == 100.05


def test_redaction():
    assert "hunter2" not in redact_secrets("password: hunter2")
    assert redact_secrets("api_key=XYZ and more") == "api_key=*** and more"
    assert redact_secrets("plain text 12:30") == "plain text 12:30"


async def test_plain_function_sink_works(alerts, clock):
    got = []
    alerts.register_sink("console", got.append)
    alerts.send(mk(clock, "medium", "sync sink"))
    await alerts.drain()
    assert [a.text for a in got] == ["sync sink"] and alerts.results[-1].ok


def test_alerts_left_queued_by_a_crash_are_replayed_after_restart(tmp_path, clock):
    path = tmp_path / "a.sqlite"
    s1 = Store(path, clock)
    before = RangeScalpingAlerts(load_config(), clock, s1)
    before.register_sink("telegram", recorder([]))
    before.alert_exit_failed(9, "XAUUSDc", "requote")  # queued, but the process "dies" before delivery
    before.send(mk(clock, "info", "info goes nowhere"))  # routed to no sink: logged, not queued
    s1.close()

    clock.advance(60)
    s2 = Store(path, clock)
    after = RangeScalpingAlerts(load_config(), clock, s2)
    got = []
    after.register_sink("telegram", recorder(got))

    async def restart():
        after.attach()
        assert after.replay_undelivered() == 1
        await after.drain()

    asyncio.run(restart())
    assert [(a.kind, a.ticket) for a in got] == [("exit_failed", 9)]
    assert [r["status"] for r in s2.alerts.recent()] == ["delivered", "logged"]
    assert after.replay_undelivered() == 0
    assert not after.alert_exit_failed(9, "XAUUSDc", "requote")  # and it counts for dedup
    s2.close()


async def test_routine_open_and_close_log_as_info_but_still_reach_the_chats(alerts, clock, caplog):
    """A take profit sent 'high' (so the chats hear of it) used to be logged at ERROR."""
    import logging

    got: list = []
    alerts.register_sink("telegram", recorder(got))
    with caplog.at_level(logging.DEBUG, logger="core.ops.alerts"):
        alerts.send(Alert(kind="exit_executed", severity="high", title="closed", text="tp", ticket=7,
                          created_at=clock.now()))
        alerts.send(mk(clock, "high", "broken", ticket=8))
    await alerts.drain()
    assert [a.text for a in got] == ["tp", "broken"]
    levels = {r.getMessage().split(": ", 1)[1]: r.levelno for r in caplog.records if r.getMessage().startswith("ALERT [")}
    assert levels == {"tp": logging.INFO, "broken": logging.ERROR}
    await alerts.close()
