"""One retry loop (issue 14 §8): every retry in the MT5 adapter and the monitor runs through
`core.domain.retry` (`run_sync`/`run_async`), where `max_retries` is the total number of attempts.

- an ast check fails when a hand-written loop around order_send, a reconnect or a sleep appears again in
  `core/brokers/mt5` or `core/exits/monitor.py` (it is shown to catch such a loop, and the real one);
- the adapter's per-retcode loop sends an order at most `max_retries` times in total, for any policy, and
  every `order_send` runs inside an attempt of the shared loop;
- the monitor's reconnect runs `max_retries` connects through `run_async`;
- the loop's hooks (per-failure budget and wait, free resends, the proof hook before a resend) do what
  the order loop relies on.
"""
from __future__ import annotations

import ast
import asyncio
import pathlib

import lifecycle_helpers as k
import pytest
from broker_contract_fixtures import SYM, MT5Driver
from fakes import fake_mt5 as mt5

import core.domain.retry as retry
from core.brokers.base import BrokerError, OrderRequest
from core.brokers.mt5 import orders
from core.brokers.mt5.orders import RetryPolicy
from core.domain.clock import FixedClock
from core.exits import monitor as monitor_mod

ROOT = pathlib.Path(__file__).resolve().parents[1]
GUARDED = sorted((ROOT / "core" / "brokers" / "mt5").glob("*.py")) + [
    ROOT / "core" / "exits" / "monitor.py", ROOT / "core" / "trading" / "execution.py",
    ROOT / "core" / "trading" / "order_send.py"]
# a loop whose body sends an order, reconnects or sleeps is a retry (or polling) loop: those live in
# core/domain/retry.py only
RETRY_CALLS = {"order_send", "_order_send", "market_order", "resolve_at_broker", "reconnect", "_reconnect", "connect", "_connect", "initialize",
               "_initialize", "sleep", "_sleep", "already_done"}


def _name(call: ast.Call) -> str:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def hand_written_retry_loops(source: str, filename: str) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            hit = {_name(c) for c in ast.walk(node) if isinstance(c, ast.Call)} & RETRY_CALLS
            if hit:
                out.append(f"{filename}:{node.lineno}: a loop calls {sorted(hit)}")
    return out


def test_no_hand_written_retry_loop_in_the_mt5_adapter_or_the_monitor():
    names = {p.name for p in GUARDED}
    assert {"orders.py", "trading.py", "broker.py", "monitor.py", "execution.py", "order_send.py"} <= names
    found = [hit for p in GUARDED for hit in hand_written_retry_loops(p.read_text(), str(p.relative_to(ROOT)))]
    assert found == [], "retry through core.domain.retry.run_sync/run_async instead:\n" + "\n".join(found)


def test_the_loop_check_catches_a_hand_written_retry_loop():
    planted = [
        "def send(order_send, req):\n    for attempt in range(3):\n        r = order_send(req)\n        if r: return r\n",
        "def call(self):\n    while True:\n        try:\n            return self.mt5.positions_get()\n"
        "        except OSError:\n            self._reconnect('x', 1)\n",
        "async def rc(self):\n    for _ in range(3):\n        await self._sleep(5)\n        self.broker.connect()\n",
    ]
    for src in planted:
        assert hand_written_retry_loops(src, "planted.py"), src
    # and the one loop there is to be: the shared one
    assert hand_written_retry_loops((ROOT / "core" / "domain" / "retry.py").read_text(), "retry.py")


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def sleep(self, s: float) -> None:
        self.t += s


def buy(comment="rs:loop"):
    return OrderRequest(symbol=SYM, side="buy", volume=0.01, sl=1998.0, tp=2005.0, magic=42, comment=comment)


@pytest.mark.parametrize("max_retries", [1, 2, 5])
@pytest.mark.parametrize("retcode,which,interval", [(10004, "orders", 0.0), (10024, "orders", 1.0),
                                                    (10031, "connection", 5.0)])
def test_the_adapter_sends_an_order_at_most_max_retries_times_in_total(max_retries, retcode, which, interval):
    """Requote (no wait), too many requests (`order_execution_fails` interval) and no server link
    (`mt5_connection_lost`): whatever the policy says, that many sends in total, that many waits less one."""
    clock = FakeClock()
    pols = {"orders": RetryPolicy(1, 1.0), "connection": RetryPolicy(1, 5.0)}
    pols[which] = RetryPolicy(max_retries, pols[which].interval)
    d = MT5Driver(sleep=clock.sleep, order_policy=pols["orders"], connection_policy=pols["connection"])
    mt5.fake_inject("order_send", retcode=retcode, times=50)
    with pytest.raises(BrokerError) as e:
        d.broker.market_order(buy())
    assert e.value.code == retcode
    assert len(mt5.fake_state()["requests"]) == max_retries and d.broker.positions() == []
    assert clock.t == pytest.approx((max_retries - 1) * interval)


def test_every_order_send_runs_inside_an_attempt_of_the_shared_loop(monkeypatch):
    depth, at_send = [0], []
    real = retry.run_sync

    def spy(n, interval, fn, **kw):
        def attempt(i):
            depth[0] += 1
            try:
                return fn(i)
            finally:
                depth[0] -= 1
        return real(n, interval, attempt, **kw)

    monkeypatch.setattr(orders, "run_sync", spy, raising=False)  # raising=False: a loop that bypasses it fails below
    d = MT5Driver(order_policy=RetryPolicy(3, 1.0))
    send = d.broker._order_send

    def counted(req):
        at_send.append(depth[0])
        return send(req)

    d.broker._order_send = counted
    mt5.fake_inject("order_send", retcode=10004, times=2)  # two requotes, then the fill
    r = d.broker.market_order(buy())
    assert r.retcode == 10009 and len(d.broker.positions()) == 1
    assert len(at_send) == 3 and all(level > 0 for level in at_send), at_send


@pytest.mark.parametrize("max_retries", [2, 4])
async def test_the_monitor_reconnects_through_the_shared_loop_max_retries_times(tmp_path, monkeypatch, max_retries):
    cfg = k.config({"error_handling": {"mt5_connection_lost": {"max_retries": max_retries}}})
    runs = []
    real = retry.run_async

    async def spy(n, interval, fn, **kw):
        runs.append(n)
        return await real(n, interval, fn, **kw)

    monkeypatch.setattr(monitor_mod, "run_async", spy, raising=False)
    clock = FixedClock(float(k.m5(cfg, "XAUUSDc")["time"][30000]))
    inner = k.paper_broker(cfg, tmp_path / "paper.sqlite", clock, symbols=("XAUUSDc",))
    inner.connect()
    svc = k.service(cfg, tmp_path, clock, broker=k.FlakyBroker(inner))
    await svc.start(monitor=False)
    svc.broker.down, svc.broker.connect_failures = True, 100
    svc.broker.calls.clear()
    rep = await svc.monitor.run_cycle()
    assert not rep.connected and runs == [max_retries] and svc.broker.calls["connect"] == max_retries
    svc.broker.connect_failures = max_retries - 1  # the last attempt of the next cycle works
    runs.clear()
    rep = await svc.monitor.run_cycle()
    assert rep.connected and runs == [max_retries] and svc.monitor.connected
    svc.store.close()
    inner.close()


# ---- the loop's hooks, as the order loop uses them -------------------------------------------------------
class Fail(Exception):
    def __init__(self, budget=None, wait=0.0):
        super().__init__("fail")
        self.budget, self.wait = budget, wait


def _run(fails, *, max_retries=3, max_free=0, before=None, clock=None):
    calls = []

    def fn(i):
        calls.append(i)
        if fails:
            raise fails.pop(0)
        return "done"

    clock = clock or FakeClock()
    out = retry.run_sync(max_retries, 9.0, fn, sleep=clock.sleep, retry_on=(Fail,),
                         retry_if=lambda e, nxt: e.budget is None or nxt < e.budget, wait=lambda e: e.wait,
                         counts=lambda e: e.budget is not None, max_free=max_free, before_retry=before)
    return out, calls, clock


def test_a_failure_is_retried_within_its_own_budget_and_waits_its_own_wait():
    out, calls, clock = _run([Fail(3, 1.0), Fail(3, 5.0)])
    assert out == "done" and calls == [0, 1, 2] and clock.t == 6.0
    with pytest.raises(Fail):  # a budget of 2 stops at the second send though the loop allows 3
        _run([Fail(2, 1.0), Fail(2, 1.0), Fail(2, 1.0)])


def test_free_resends_repeat_the_attempt_and_are_bounded():
    out, calls, _ = _run([Fail(), Fail(3)], max_free=1)
    assert out == "done" and calls == [0, 0, 1]  # the free resend is attempt 0 again
    fails = [Fail() for _ in range(10)]
    with pytest.raises(Fail):
        _run(fails, max_retries=2, max_free=2)
    assert len(fails) == 10 - 4  # 2 free + 2 counted, never more, however often a failure says "free"


def test_the_hook_before_a_resend_can_prove_the_first_one_acted_or_stop_the_loop():
    out, calls, _ = _run([Fail(3)], before=lambda e: "found at the broker")
    assert out == "found at the broker" and calls == [0]  # no resend

    def unproven(e):
        raise BrokerError("look-ups failed: not resent", None)

    with pytest.raises(BrokerError, match="not resent"):
        _run([Fail(3)], before=unproven)


def test_run_async_takes_a_coroutine_hook():
    seen = []

    async def fn(i):
        seen.append(i)
        if i == 0:
            raise Fail(2)
        return "second"

    async def hook(e):
        return None

    async def no_sleep(s):
        pass

    out = asyncio.run(retry.run_async(2, 1.0, fn, sleep=no_sleep, retry_on=(Fail,), before_retry=hook))
    assert out == "second" and seen == [0, 1]
