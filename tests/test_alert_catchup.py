"""A chat that was down gets, once and marked late, the alerts routed to it that it missed; nothing it
already got, no flood, and no history at a normal start-up or after a restart. Real store, fake sinks."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from core.config.loading import load_config
from core.domain.models import Alert
from core.ops import alerts_replay
from core.ops.alerts import RangeScalpingAlerts
from core.store import Store


async def _no_wait(_s: float) -> None:
    await asyncio.sleep(0)


def _alerts(clock, store) -> RangeScalpingAlerts:
    return RangeScalpingAlerts(load_config(), clock, store, sleep=_no_wait)


class Chat:
    """A chat sink that records what it got, and fails while `down`."""

    def __init__(self) -> None:
        self.got: list[Alert] = []
        self.down = False

    async def __call__(self, alert: Alert) -> None:
        if self.down:
            raise ConnectionError("api.telegram.org unreachable")
        self.got.append(alert)

    @property
    def titles(self) -> list[str]:
        return [a.title for a in self.got]


def _hhmm(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M")


def _telegram_log(store) -> list[tuple[str, str]]:
    return [(r["title"], r["deliveries"].get("telegram", "")) for r in store.alerts.recent(100)]


async def test_a_chat_expected_at_start_up_gets_what_it_missed_once_marked_delayed(clock, store):
    alerts = _alerts(clock, store)
    console, tg, dc = Chat(), Chat(), Chat()
    alerts.register_sink("console", console)
    alerts.expect_sink("telegram")  # configured, but not connected yet
    sent_at = clock.now()
    alerts.alert_exit_failed(9, "XAUUSDc", "requote", attempts=3)
    await alerts.drain()
    assert console.titles == ["EXIT FAILED - XAUUSDc #9"]
    assert _telegram_log(store) == [("EXIT FAILED - XAUUSDc #9", "missed: not connected")]

    clock.advance(600)
    alerts.register_sink("telegram", tg)  # connected ten minutes later
    alerts.register_sink("discord", dc)  # not expected by anyone: no history for it
    await alerts.drain()
    assert tg.titles == [f"⏱ delayed, from {_hhmm(sent_at)} UTC: EXIT FAILED - XAUUSDc #9"]
    assert "MANUAL CLOSE REQUIRED" in tg.got[0].text and tg.got[0].created_at == sent_at
    assert dc.got == [] and len(console.got) == 1
    assert _telegram_log(store) == [("EXIT FAILED - XAUUSDc #9", "delivered late")]
    assert store.alerts.recent()[0]["status"] == "delivered"

    alerts.register_sink("telegram", tg)  # registering again: nothing left to catch up
    await alerts.drain()
    assert len(tg.got) == 1
    await alerts.close()


async def test_a_chat_that_reconnects_gets_only_what_it_did_not_get(clock, store):
    alerts = _alerts(clock, store)
    tg = Chat()
    alerts.expect_sink("telegram")
    alerts.register_sink("telegram", tg)
    alerts.alert_system_error("broker_timeout", "MT5 slow", dedup_key="a")  # delivered live
    await alerts.drain()
    alerts.unregister_sink("telegram")  # the link dropped
    alerts.send(Alert(kind="range_invalidated", severity="high", title="RANGE INVALIDATED - EURUSD #5",
                      text="close beyond the range", ticket=5, created_at=alerts.clock.now()))
    alerts.alert_auto_disabled("5 errors in an hour")
    alerts.register_sink("telegram", tg)
    await alerts.drain()
    assert [t.split(": ", 1)[-1] if t.startswith("⏱") else t for t in tg.titles] == [
        "System error: broker timeout", "RANGE INVALIDATED - EURUSD #5", "AUTO-DISABLED: no new trades"]
    assert [t.startswith("⏱ delayed, from ") for t in tg.titles] == [False, True, True]
    assert [d for _, d in _telegram_log(store)] == ["delivered", "delivered late", "delivered late"]
    await alerts.close()


async def test_a_failing_chat_that_answers_again_is_caught_up_without_reconnecting(clock, store):
    alerts = _alerts(clock, store)
    tg = Chat()
    alerts.expect_sink("telegram")
    alerts.register_sink("telegram", tg)
    tg.down = True
    alerts.alert_exit_failed(7, "EURUSD", "no prices")
    await alerts.drain()
    assert tg.got == [] and _telegram_log(store)[0][1].startswith("failed after 4: ConnectionError")

    tg.down = False  # the network is back; the link never noticed it was gone
    alerts.alert_system_error("feed_stale", "EURUSD quotes 3 min old")
    await alerts.drain()
    assert tg.titles == ["System error: feed stale", f"⏱ delayed, from {_hhmm(clock.now())} UTC: EXIT FAILED - EURUSD #7"]
    assert [d for _, d in _telegram_log(store)] == ["delivered late", "delivered"]
    alerts.alert_system_error("feed_stale", "EURUSD quotes fine again")
    await alerts.drain()
    assert len(tg.got) == 3  # caught up once
    await alerts.close()


async def test_a_long_outage_sends_the_important_ones_and_one_summary_line(clock, store):
    alerts = _alerts(clock, store)
    tg = Chat()
    alerts.expect_sink("telegram")
    for i in range(12):  # routine closes, each news, but not worth ten pings an hour later
        clock.advance(60)
        alerts.send(Alert(kind="exit_executed", severity="high", title=f"EXIT - EURUSD #{i}", text="tp",
                          ticket=i, created_at=clock.now()))
        if i in (2, 5, 8):
            alerts.alert_exit_failed(100 + i, "EURUSD", "requote")
        if i == 10:
            # information, as the monitor sends it (#19)
            alerts.send(Alert(kind="range_invalidated", severity="info", title="RANGE INVALIDATED - GBPUSD #200",
                              text="range broken", ticket=200, created_at=clock.now()))
    alerts.send(Alert(kind="system_error", severity="medium", title="slow cycle", text="m", created_at=clock.now()))
    alerts.register_sink("telegram", tg)
    await alerts.drain()

    titles = [t.split(" UTC: ", 1)[-1] for t in tg.titles]
    # every critical and non-routine high one, then the most recent routine ones up to 10; oldest first.
    # A range invalidation is information (#19): it ranks below the closes, so it is summarised here.
    assert titles == ["EXIT FAILED - EURUSD #102", "EXIT - EURUSD #5", "EXIT FAILED - EURUSD #105", "EXIT - EURUSD #6",
                      "EXIT - EURUSD #7", "EXIT - EURUSD #8", "EXIT FAILED - EURUSD #108", "EXIT - EURUSD #9",
                      "EXIT - EURUSD #10", "EXIT - EURUSD #11",
                      "⏱ delayed: 6 more alert(s) not shown"]
    assert tg.got[-1].text == "and 6 more: /health or the log"
    log = dict(_telegram_log(store))
    assert [log[f"EXIT - EURUSD #{i}"] for i in range(5)] == ["summarised in a catch-up"] * 5
    assert log["RANGE INVALIDATED - GBPUSD #200"] == "summarised in a catch-up"
    assert log["slow cycle"] == ""  # medium is not routed to Telegram: it missed nothing there
    alerts.unregister_sink("telegram")
    alerts.register_sink("telegram", tg)  # a second reconnect: nothing counted twice
    await alerts.drain()
    assert len(tg.got) == 11
    await alerts.close()


def test_the_cap_never_drops_critical_alerts():
    rows = [{"id": i, "kind": "exit_failed", "severity": "critical"} for i in range(14)]
    rows += [{"id": 14, "kind": "system_error", "severity": "high"}, {"id": 15, "kind": "x", "severity": "medium"}]
    send, summarised = alerts_replay.plan(rows, cap=10)
    assert [r["id"] for r in send] == list(range(15)) and [r["id"] for r in summarised] == [15]


@pytest.mark.parametrize("age_s, caught_up", [(3000, True), (4000, False)])
async def test_only_the_last_hour_is_caught_up(clock, store, age_s, caught_up):
    alerts = _alerts(clock, store)
    tg = Chat()
    alerts.expect_sink("telegram")
    alerts.alert_auto_disabled("drawdown")
    clock.advance(age_s)
    alerts.register_sink("telegram", tg)
    await alerts.drain()
    assert len(tg.got) == int(caught_up)
    await alerts.close()


def test_a_restart_sends_what_the_last_run_missed_and_nothing_already_caught_up(tmp_path, clock):
    """Telegram down when the process stopped (or crashed): its missed alert must not be lost with the
    process. One it got (late) is not sent again, and a second restart sends nothing more."""
    path = tmp_path / "a.sqlite"
    s1 = Store(path, clock)
    tg = Chat()

    async def first_run():
        alerts = _alerts(clock, s1)
        alerts.expect_sink("telegram")
        alerts.alert_exit_failed(1, "EURUSD", "requote")  # missed, then caught up
        alerts.register_sink("telegram", tg)
        await alerts.drain()
        alerts.unregister_sink("telegram")
        alerts.alert_exit_failed(2, "EURUSD", "requote")  # missed, and the process stops before it is back
        await alerts.close()

    asyncio.run(first_run())
    assert [t.split(" UTC: ")[-1] for t in tg.titles] == ["EXIT FAILED - EURUSD #1"]
    s1.close()

    clock.advance(60)
    s2 = Store(path, clock)
    tg2 = Chat()

    async def second_run():
        alerts = _alerts(clock, s2)
        alerts.expect_sink("telegram")
        alerts.register_sink("telegram", tg2)  # a normal start-up: connected at once
        await alerts.drain()
        await alerts.close()

    asyncio.run(second_run())
    assert [t.split(" UTC: ")[-1] for t in tg2.titles] == ["EXIT FAILED - EURUSD #2"]
    assert all(t.startswith("⏱ delayed, from ") for t in tg2.titles)
    assert [d for _, d in _telegram_log(s2)] == ["delivered late", "delivered late"]
    s2.close()

    clock.advance(60)
    s3 = Store(path, clock)
    tg3 = Chat()

    async def third_run():
        alerts = _alerts(clock, s3)
        alerts.expect_sink("telegram")
        alerts.register_sink("telegram", tg3)
        await alerts.drain()
        await alerts.close()

    asyncio.run(third_run())
    assert tg3.got == []  # a normal start-up replays nothing
    s3.close()


async def test_an_alert_sent_from_a_thread_as_the_chat_connects_goes_out_once(clock, store):
    """The alert is logged on the sending thread and queued on the loop a moment later; a chat that
    connects in between must get it live or late, never both."""
    import threading

    alerts = _alerts(clock, store)
    alerts.attach()
    tg = Chat()
    alerts.expect_sink("telegram")
    sender = threading.Thread(target=alerts.alert_exit_failed, args=(3, "XAUUSDc", "requote"))
    sender.start()
    sender.join()  # logged, its hand-off to the loop not run yet: the loop is busy here
    alerts.register_sink("telegram", tg)  # the catch-up runs now, before that hand-off
    await alerts.drain()
    assert tg.titles == ["EXIT FAILED - XAUUSDc #3"]
    assert [d for _, d in _telegram_log(store)] == ["delivered"]
    await alerts.close()


def test_a_chat_registered_before_the_loop_gets_an_alert_sent_then_once(clock, store):
    """Before a loop exists, the catch-up of a chat registering and an alert sent just after both wait
    for it; the alert, already logged, must not go out late and then live too."""
    alerts = _alerts(clock, store)
    tg = Chat()
    alerts.expect_sink("telegram")
    alerts.register_sink("telegram", tg)
    alerts.alert_auto_disabled("5 errors in an hour")

    async def run() -> None:
        await alerts.drain()
        await alerts.close()

    asyncio.run(run())
    assert tg.titles == ["AUTO-DISABLED: no new trades"]
    assert [d for _, d in _telegram_log(store)] == ["delivered"]


async def test_a_late_copy_the_chat_refuses_for_good_is_given_up_after_two_rounds(clock, store):
    """A message Telegram will never take (say, too long) must not come back, with all its retries,
    after every later alert that does get through."""
    alerts = _alerts(clock, store)
    calls: list[str] = []
    got: list[str] = []

    async def picky(alert: Alert) -> None:
        calls.append(alert.title)
        if "#13" in alert.title:
            raise ValueError("Bad Request: message is too long")
        got.append(alert.title)

    alerts.expect_sink("telegram")
    alerts.alert_exit_failed(13, "XAUUSDc", "requote")  # missed: not connected
    await alerts.drain()
    alerts.register_sink("telegram", picky)  # catch-up round 1: the late copy fails every attempt
    await alerts.drain()
    for ticket in (21, 22, 23):  # each live success may trigger another catch-up round
        alerts.alert_exit_failed(ticket, "XAUUSDc", "requote")
        await alerts.drain()
    tries = 1 + alerts.cfg.sink_max_retries
    assert sum("#13" in t for t in calls) == 2 * tries  # two rounds, then given up
    assert [t.split(" - ")[-1] for t in got] == ["XAUUSDc #21", "XAUUSDc #22", "XAUUSDc #23"]
    said = dict(_telegram_log(store))
    assert said["EXIT FAILED - XAUUSDc #13"].startswith("gave up: late copy failed after")
    await alerts.close()
