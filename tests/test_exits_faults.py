"""Exit orders under the `exit_order_fails` policy: retries with a widening deviation, then an
exit-failed alert asking for a manual close while the broker-side SL stays in place."""
from __future__ import annotations

import lifecycle_helpers as k
import pytest

from core.brokers.base import PositionNotFoundError, PriceChangedError, RequoteError

SYMBOL = "XAUUSDc"


@pytest.fixture(scope="module")
def cfg():
    return k.config()


async def _svc_with_trade(cfg, tmp_path):
    bars = k.m5(cfg, SYMBOL)
    svc, _, _ = await k.paper_service(cfg, tmp_path, float(bars["time"][30000]))
    (ticket,) = await k.open_trades(svc, SYMBOL)
    return svc, ticket


async def test_exit_failing_three_times_raises_exit_failed_alert_and_keeps_the_stop(cfg, tmp_path):
    svc, ticket = await _svc_with_trade(cfg, tmp_path)
    sl_before = svc.broker.positions()[0].sl
    svc.broker.fail("close_position", RequoteError("requote", 10004), PriceChangedError("moved", 10020),
                    RequoteError("requote", 10004))
    out = await svc.close_trade(ticket, k.TRADER)
    assert not out.ok and "refused the close 3 time(s)" in out.message
    assert svc.broker.calls["close_position"] == 3
    pos = svc.broker.positions()
    assert [p.ticket for p in pos] == [ticket] and pos[0].sl == sl_before  # broker-side SL untouched
    alerts = [a for a in svc.notifier.sent if a.kind == "exit_failed"]
    assert len(alerts) == 1 and "close it manually" in alerts[0].text and str(sl_before) in alerts[0].text
    assert alerts[0].severity == "high" and alerts[0].trade is not None  # data for the chart
    assert any(a.kind == "exit_failed" for a in svc.alerts.sent)  # handed to RangeScalpingAlerts
    assert svc.exits.get(ticket).exit_manager_state == "exit_failed"
    assert [e.event for e in svc.store.journal.for_ticket(ticket)][-1] == "exit_failed"
    attempts = svc.store.journal.for_ticket(ticket)[-1].data["attempts"]
    devs = [a["deviation"] for a in attempts]
    assert devs[0] == cfg.execution.deviation_points and devs == sorted(devs) and devs[-1] > devs[0]
    ev = svc.store.errors.recent(5, "exit_order_fails")
    assert ev and ev[0].severity == "high"
    # a later attempt that works closes and journals it normally
    again = await svc.close_trade(ticket, k.TRADER)
    assert again.ok and svc.store.closed.get(ticket) is not None and not svc.broker.positions()


async def test_position_already_closed_by_the_broker_is_journalled_not_alerted(cfg, tmp_path):
    svc, ticket = await _svc_with_trade(cfg, tmp_path)
    svc.broker.inner.close_position(ticket)  # e.g. the SL hit between our check and our order
    svc.broker.fail("close_position", PositionNotFoundError("gone", 10036))
    out = await svc.close_trade(ticket, k.TRADER)
    assert out.ok and svc.store.closed.get(ticket) is not None
    assert not [a for a in svc.notifier.sent if a.kind == "exit_failed"]
    assert ticket not in svc.range_scalp_tickets()


async def test_emergency_pauses_then_closes_every_range_scalp(cfg, tmp_path):
    svc, first = await _svc_with_trade(cfg, tmp_path)
    second = (await k.open_trades(svc, SYMBOL))[0]
    res = await svc.emergency(k.TRADER)
    assert res.ok and "closed 2 of 2" in res.message
    assert all(o.ok for o in res.outcomes) and {o.ticket for o in res.outcomes} == {first, second}
    assert not svc.broker.positions() and not svc.range_scalp_tickets()
    assert svc.store.kill_switch.get().emergency
    # a card from before the emergency (a fresh /scalp on this twice-traded range offers no Approve at all)
    props = svc.execution.create_proposals(await svc.analyse(SYMBOL))
    refused = await svc.approve(props[0].id, k.TRADER)
    assert not refused.ok and "Emergency" in refused.message


async def test_emergency_names_the_positions_it_could_not_close(cfg, tmp_path):
    svc, ticket = await _svc_with_trade(cfg, tmp_path)
    svc.broker.fail("close_position", *[RequoteError("requote", 10004)] * 3)
    res = await svc.emergency(k.TRADER)
    assert not res.ok and f"Could NOT close ticket(s) {ticket}" in res.message
    assert svc.store.kill_switch.get().emergency and [p.ticket for p in svc.broker.positions()] == [ticket]
