"""/close and /emergency confirmations lapse after the proposal window, on the service (replay) clock."""
from __future__ import annotations

from types import SimpleNamespace

from bot_helpers import TRADER, VIEWER, start_core

from bot.commands import CommandRouter
from bot.runner import make_router
from core.domain.clock import FixedClock
from core.domain.exceptions import NotAuthorizedError


async def test_close_and_emergency_confirmations_expire_on_the_real_core(tmp_path):
    service, clock = await start_core(tmp_path)
    router = make_router(service, service.cfg, chart_dir=tmp_path)
    window = service.cfg.execution.proposal_expiry_seconds
    tap = router.handle_callback
    try:
        card = await router.handle_text("/scalp XAUUSDc", TRADER)
        assert (await tap(card.buttons[0][0].payload, TRADER)).text.startswith("✅ Executed at")
        ticket = service.broker.positions()[0].ticket
        expired_close = f"This confirmation expired; send /close {ticket} again."

        # a confirmation left untapped past the window: refused, the card replaced, nothing closed
        stale = (await router.handle_text(f"/close {ticket}", TRADER)).buttons[0][0].payload
        assert stale == f"c:{ticket}:{int(clock.now())}"
        clock.advance(window + 1)
        out = await tap(stale, TRADER)
        assert (out.text, out.kind, out.edit) == (expired_close, "error", True)
        assert [p.ticket for p in service.broker.positions()] == [ticket]

        # old-format buttons (no issue time) and forged future stamps are refused the same way
        now = int(clock.now())
        for payload in (f"c:{ticket}", f"c:{ticket}:{now + 10**6}", f"c:{ticket}:999999999999"):
            assert (await tap(payload, TRADER)).text == expired_close, payload
        # malformed ones are simply invalid
        for payload in (f"c:{ticket}:", f"c:{ticket}:x1", f"c:{ticket}:{now}:1", f"c:0:{now}", f"c:-{ticket}:{now}"):
            assert "not valid" in (await tap(payload, TRADER)).text, payload
        assert [p.ticket for p in service.broker.positions()] == [ticket]

        # emergency: stale, old-format and forged-future confirmations change nothing
        stale_e = (await router.handle_text("/emergency", TRADER)).buttons[0][0].payload
        assert stale_e == f"e:{int(clock.now())}"
        clock.advance(window)
        for payload in (stale_e, "e:go", f"e:{int(clock.now()) + 10**6}"):
            out = await tap(payload, TRADER)
            assert (out.text, out.edit) == ("This confirmation expired; send /emergency again.", True), payload
        assert "not valid" in (await tap("e:now", TRADER)).text
        assert service.notifier.entries_blocked() is None and service.broker.positions()
        # a viewer is refused before anything about the button is revealed
        assert (await tap(f"e:{int(clock.now())}", VIEWER)).kind == "refusal"

        # within the window the same buttons work
        fresh = (await router.handle_text(f"/close {ticket}", TRADER)).buttons[0][0].payload
        clock.advance(window - 2)
        assert (await tap(fresh, TRADER)).text.startswith(f"✅ Closed ticket {ticket} at")
        assert service.broker.positions() == []
        fresh_e = (await router.handle_text("/emergency", TRADER)).buttons[0][0].payload
        clock.advance(window - 2)
        assert "Emergency stop" in (await tap(fresh_e, TRADER)).text
        assert service.notifier.entries_blocked()
    finally:
        await service.stop()


class _ReplayClock(FixedClock):
    """A replay clock at speed N, like the paper broker's AcceleratedClock in `moneybot run`."""

    def __init__(self, start: float, speed: float) -> None:
        super().__init__(start)
        self.speed = speed


class _EmergencyService:
    def __init__(self, clock) -> None:
        self.clock = clock
        self.calls = 0

    def authorize(self, user_id, action) -> None:
        if user_id != TRADER:
            raise NotAuthorizedError("Sorry, you may not do that.")

    async def emergency(self, user_id) -> str:
        self.calls += 1
        return "all closed"


async def test_window_stretches_with_the_replay_speed():
    # 120 s of a trader's time is 120*60 replay seconds at speed 60: not lapsed after 2 replay minutes
    clock = _ReplayClock(1_735_910_700, speed=60)
    service = _EmergencyService(clock)
    cfg = SimpleNamespace(execution=SimpleNamespace(proposal_expiry_seconds=120), symbols={})
    router = CommandRouter(service, cfg)
    payload = (await router.handle_text("/emergency", TRADER)).buttons[0][0].payload
    clock.advance(120 * 59)
    assert (await router.handle_callback(payload, TRADER)).text == "all closed" and service.calls == 1
    payload = (await router.handle_text("/emergency", TRADER)).buttons[0][0].payload
    clock.advance(120 * 60 + 1)
    assert (await router.handle_callback(payload, TRADER)).text.startswith("This confirmation expired")
    assert service.calls == 1
    # slack for a forged future stamp is small even at speed 60 (2 real seconds)
    assert (await router.handle_callback(f"e:{int(clock.now()) + 121}", TRADER)).text.startswith("This confirmation")
    assert (await router.handle_callback(f"e:{int(clock.now()) + 60}", TRADER)).text == "all closed"
    assert (await router.handle_callback(f"e:{int(clock.now())}", VIEWER)).kind == "refusal"
    assert service.calls == 2
