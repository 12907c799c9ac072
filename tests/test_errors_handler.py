"""ErrorHandler: policy table, retries/fallbacks (instant sleeps), severity + stale override, persistence,
auto-disable at the thresholds and its survival across a restart."""
from __future__ import annotations

import asyncio
import logging

import pytest

from core.config.loading import load_config, validate_config_dict
from core.config.model import deep_merge
from core.ops.alerts import RangeScalpingAlerts
from core.ops.error_handler import ErrorHandler, LastKnown
from core.store import Store
from core.trading.killswitch import KillSwitch


@pytest.fixture
def cfg():
    return load_config()


class Sleeps:
    def __init__(self):
        self.calls: list[float] = []

    async def __call__(self, s):
        self.calls.append(s)

    def sync(self, s):
        self.calls.append(s)


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def alerts(cfg, clock, store):
    a = RangeScalpingAlerts(cfg, clock, store, sleep=lambda s: asyncio.sleep(0))
    a.cfg.dedup_window_seconds = 0
    return a


@pytest.fixture
def handler(cfg, store, alerts, clock, sleeps):
    return ErrorHandler(cfg, store, alerts, KillSwitch(store, cfg, clock), clock=clock, sleep=sleeps, sync_sleep=sleeps.sync)


def test_policy_lookup_per_symbol_and_default(tmp_path, store, clock):
    raw = load_config().model_dump(mode="json")
    raw = deep_merge(raw, {"symbol_overrides": {"BTCUSDc": {"error_handling": {
        "mt5_connection_lost": {"action": "retry_connection", "max_retries": 7, "retry_interval": 1}}}}})
    cfg, issues = validate_config_dict(raw)
    assert not issues
    h = ErrorHandler(cfg, store, None, KillSwitch(store, cfg, clock), clock=clock)
    assert h.policy("mt5_connection_lost").max_retries == 3
    assert h.policy("mt5_connection_lost", "BTCUSDc").max_retries == 7
    assert h.policy("exit_order_fails").action == "retry_with_slippage"
    assert h.policy("something_new").action == "log_error"


@pytest.mark.parametrize("etype, ctx, want", [
    ("mt5_connection_lost", {}, "critical"),
    ("exit_order_fails", {}, "high"),
    ("retry_succeeded", {}, "medium"),
    ("breakeven_moved", {}, "info"),
    ("never_heard_of_it", {}, "medium"),
    ("data_stale_warning", {"stale_minutes": 16}, "high"),
    ("data_stale_warning", {"stale_minutes": 15}, "medium"),
    ("breakeven_moved", {"stale_minutes": 6}, "medium"),
    ("data_stale_warning", {"stale_minutes": 5}, "medium"),  # not above 5 -> map value (medium)
    ("stale_data_critical", {"stale_minutes": 2}, "high"),
    ("data_stale_warning", {"stale_minutes": __import__("numpy").int64(20)}, "high"),
])
def test_severity_map_and_stale_override(handler, etype, ctx, want):
    assert handler.classify(etype, ctx) == want


async def test_retry_connection_succeeds_after_failures(handler, store, sleeps):
    calls = []

    async def connect(attempt):
        calls.append(attempt.number)
        if attempt.number < 2:
            raise ConnectionError("socket closed")
        return "connected"

    out = await handler.run_with_policy("mt5_connection_lost", connect, context={"symbol": "BTCUSDc"})
    assert out.ok and out.result == "connected" and out.attempts == 3 and calls == [0, 1, 2]
    assert sleeps.calls == [5, 5]
    [ev] = store.errors.recent()
    assert ev.error_type == "retry_succeeded" and ev.severity == "medium" and ev.outcome == "recovered"
    assert ev.context["original_error_type"] == "mt5_connection_lost"


async def test_first_try_success_records_nothing(handler, store, sleeps):
    async def ok(attempt):
        return 1

    out = await handler.run_with_policy("mt5_connection_lost", ok)
    assert out.ok and out.attempts == 1 and sleeps.calls == [] and store.errors.count() == 0


async def test_retry_connection_exhausted_alerts_user_and_keeps_monitoring(handler, store, alerts, sleeps):
    got = []

    async def sink(a):
        got.append(a)

    alerts.register_sink("telegram", sink)

    async def connect(attempt):
        raise ConnectionError("no route")

    out = await handler.run_with_policy("mt5_connection_lost", connect)
    # max_retries (3) is the TOTAL number of attempts, as everywhere
    assert not out.ok and out.attempts == 3 and out.fallback == "alert_user" and out.should_continue
    assert out.severity == "critical" and sleeps.calls == [5, 5]
    [ev] = store.errors.recent()
    assert ev.error_type == "mt5_connection_lost" and ev.severity == "critical" and ev.context["attempts"] == 3
    await alerts.drain()
    assert [a.kind for a in got] == ["system_error"] and "3 attempt" in got[0].text


async def test_exit_order_fails_widens_slippage_then_asks_for_manual_close(handler, alerts, sleeps):
    got = []

    async def sink(a):
        got.append(a)

    alerts.register_sink("telegram", sink)
    seen = []

    async def close(attempt):
        seen.append(attempt.slippage_pct)
        raise RuntimeError("requote")

    out = await handler.run_with_policy("exit_order_fails", close, context={"ticket": 42, "symbol": "XAUUSDc"})
    assert seen == [None, pytest.approx(0.075), pytest.approx(0.15)]  # 3 attempts in total, the last the widest
    assert not out.ok and out.fallback == "alert_user_manual_close" and sleeps.calls == [2, 2]
    await alerts.drain()
    assert [a.kind for a in got] == ["exit_failed"]
    assert got[0].ticket == 42 and "MANUAL CLOSE" in got[0].text and "3 attempts" in got[0].text


async def test_order_execution_fails_falls_back_to_skip_trade(handler):
    async def send(attempt):
        raise TimeoutError()

    out = await handler.run_with_policy("order_execution_fails", send)
    assert not out.ok and out.attempts == 2 and out.skip_trade and out.notify_user


async def test_skip_trade_does_not_retry(handler, sleeps):
    n = []

    async def detect(attempt):
        n.append(1)
        raise ValueError("too few candles")

    out = await handler.run_with_policy("range_detection_fails", detect)
    assert len(n) == 1 and out.skip_trade and not out.ok and sleeps.calls == []
    assert out.message == "There was not enough clean price data to find a range."


async def test_use_last_known_data_within_max_age(handler, clock):
    async def fetch(attempt):
        raise ConnectionError("calendar down")

    fresh = LastKnown(value=["NFP"], as_of=clock.now() - 10 * 60)
    out = await handler.run_with_policy("data_source_unavailable", fetch, last_known=fresh)
    assert out.ok and out.used_last_known and out.result == ["NFP"] and "10.0 min old" in out.message
    stale = LastKnown(value=["NFP"], as_of=clock.now() - 16 * 60)
    out = await handler.run_with_policy("data_source_unavailable", fetch, last_known=stale)
    assert not out.ok and not out.used_last_known and out.fallback == "skip_check"


async def test_exceptions_outside_retry_on_propagate(handler):
    async def boom(attempt):
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await handler.run_with_policy("mt5_connection_lost", boom, retry_on=(ConnectionError,))


def test_sync_variant_for_worker_threads(handler, sleeps):
    calls = []

    def send(attempt):
        calls.append(attempt.number)
        if attempt.number == 0:
            raise ConnectionError("x")
        return 7

    out = handler.run_with_policy_sync("order_execution_fails", send)
    assert out.ok and out.result == 7 and calls == [0, 1] and sleeps.calls == [1]


def test_handle_records_and_applies_fallback(handler, store):
    out = handler.handle("price_validation_fails", context={"symbol": "EURUSDc", "moved_pct": 0.3})
    assert out.skip_trade and out.message == "Price moved beyond the acceptable slippage."
    [ev] = store.errors.recent()
    assert ev.symbol == "EURUSDc" and ev.context["moved_pct"] == 0.3


def test_secrets_never_reach_logs_or_store(handler, store, caplog):
    token = "123456789:AAHfakefakefakefakefakefakefakefake12"
    with caplog.at_level(logging.DEBUG):
        handler.record("mt5_connection_lost", f"login failed password=hunter2 url=https://api/bot{token}/x",
                       context={"note": f"token={token}"})
    stored = store.errors.recent()[0]
    for text in (caplog.text, stored.message, str(stored.context)):
        assert "hunter2" not in text and token not in text


def test_auto_disable_at_critical_threshold_and_survives_restart(cfg, tmp_path, clock):
    path = tmp_path / "s.sqlite"
    store = Store(path, clock)
    alerts = RangeScalpingAlerts(cfg, clock, store)
    h = ErrorHandler(cfg, store, alerts, KillSwitch(store, cfg, clock), clock=clock)
    assert cfg.kill_switch.max_critical_errors_per_hour == 3
    h.record("monitoring_loop_crashed", "1")
    clock.advance(600)
    h.record("state_corruption", "2")
    assert h.killswitch.entries_allowed()
    clock.advance(600)
    h.record("orphaned_trades", "3")
    assert not h.killswitch.entries_allowed()
    assert "3 critical errors" in h.killswitch.block_reason()
    assert [a.kind for a in alerts.sent].count("auto_disabled") == 1
    h.record("orphaned_trades", "4")  # still disabled, no second auto-disable alert
    assert [a.kind for a in alerts.sent].count("auto_disabled") == 1
    store.close()

    clock.advance(7200)  # hours later, after a restart: still off until a human resumes
    store2 = Store(path, clock)
    ks = KillSwitch(store2, cfg, clock)
    assert not ks.entries_allowed() and ks.state().auto_disabled
    ks.resume("trader:1")
    assert ks.entries_allowed()
    h2 = ErrorHandler(cfg, store2, None, ks, clock=clock)
    h2.record("monitoring_loop_crashed", "after resume")  # old errors no longer count
    assert ks.entries_allowed()
    store2.close()


def test_critical_errors_outside_the_hour_do_not_count(handler, clock):
    for _ in range(2):
        handler.record("monitoring_loop_crashed")
    clock.advance(3601)
    handler.record("monitoring_loop_crashed")
    assert handler.killswitch.entries_allowed()
    assert handler.error_rates() == (1, 1)


def test_auto_disable_on_total_error_rate(handler, cfg):
    limit = cfg.kill_switch.max_errors_per_hour
    for i in range(limit - 1):
        handler.record("exit_order_fails" if i % 2 else "data_stale_warning", f"e{i}")
    for _ in range(5):
        handler.record("trade_registered")  # info events are not errors
    assert handler.killswitch.entries_allowed()
    handler.record("config_validation_failed")
    assert not handler.killswitch.entries_allowed()
    assert f"{limit} errors in the last hour" in handler.killswitch.block_reason()


def test_critical_failure_without_keep_monitoring_says_stop(handler):
    assert handler.handle("state_corruption", "checksum mismatch").should_continue is False
    assert handler.handle("exit_order_fails", "requote").should_continue is True


def test_record_survives_a_broken_store(handler, store, caplog):
    store.close()
    ev = handler.record("monitoring_loop_crashed", "boom")  # must not raise
    assert ev.id is None and "could not persist error event" in caplog.text


async def test_error_and_alert_raised_inside_a_rolled_back_step_are_kept(handler, store, alerts):
    got = []

    async def sink(a):
        got.append(a)

    alerts.register_sink("telegram", sink)
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.journal.append("opened", ticket=1)
            handler.record("execution_failed_after_approval", "broker said no", context={"ticket": 1})
            alerts.alert_exit_failed(1, "BTCUSDc", "requote")
            assert store.errors.count() == 0  # deferred until the step ends...
            raise RuntimeError("step fails")
    assert store.journal.count() == 0  # ...the step rolled back...
    [ev] = store.errors.recent()  # ...but the error event and the alerts survived it
    assert ev.error_type == "execution_failed_after_approval"
    await alerts.drain()
    assert sorted(a.kind for a in got) == ["exit_failed", "system_error"]
    assert store.alerts.count() == 2


def test_context_values_are_made_json_safe(handler, store):
    import numpy as np

    handler.record("data_stale_warning", context={"stale_minutes": np.float64(6.5), "bars": np.int64(12),
                                                  "path": ["a", np.int32(3)], "obj": object()})
    [ev] = store.errors.recent()
    assert ev.severity == "medium"  # the numpy stale_minutes still drove the override
    assert ev.context["stale_minutes"] == 6.5 and ev.context["bars"] == 12 and ev.context["path"] == ["a", 3]
    assert ev.context["obj"].startswith("<object")
