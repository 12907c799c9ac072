"""What a trader reads, on the real core (PaperBroker on real candles): units on money, sentences
instead of 'trade(s)', and a card that says a tap will be refused while trading is paused."""
from __future__ import annotations

import re

from bot_helpers import TRADER, journal_closed_trades, start_core

from bot.runner import make_router


async def test_cards_carry_units_plurals_and_the_pause(tmp_path):
    service, clock = await start_core(tmp_path)
    router = make_router(service, service.cfg, chart_dir=tmp_path / "charts")
    currency = service.broker.account_info().currency
    assert currency  # the paper account's currency (USD unless configured otherwise)

    async def say(text):
        return (await router.handle_text(text, TRADER)).text

    try:
        assert "/scalp SYMBOL" in await say("/status")  # an empty list says what to do next

        await say("/pause")
        card = await say("/scalp XAUUSDc")
        lines = card.splitlines()
        tap = next(i for i, ln in enumerate(lines) if ln.startswith("Tap Approve"))
        assert lines[tap - 1].startswith("⏸ ") and "/resume" in lines[tap - 1]
        assert re.search(r"confidence \d+/100", card) and re.search(r"· width \d+\.\d\d% ·", card)
        await say("/resume")
        card = await say("/scalp XAUUSDc")
        assert "⏸" not in card and "Tap Approve" in card

        journal_closed_trades(service.store, 1)
        trades = await say("/trades 1")
        assert trades.startswith("Last closed trade:") and "(s)" not in trades
        assert re.search(rf"P&L [+-]\d+\.\d\d {currency} ·", trades)
        metrics = await say("/metrics 3650")
        assert metrics.startswith("Metrics, last 3650 days: 1 trade\n") and f" {currency}" in metrics
        assert ": 1 trade," in metrics  # per strategy too

        journal_closed_trades(service.store, 3, first_ticket=600000)
        assert (await say("/trades 3")).startswith("Last 3 closed trades:")
    finally:
        await service.stop()


async def test_open_trade_status_shows_money_next_to_r(tmp_path):
    service, clock = await start_core(tmp_path)
    router = make_router(service, service.cfg, chart_dir=tmp_path / "charts")
    currency = service.broker.account_info().currency
    try:
        r = await router.handle_text("/scalp XAUUSDc", TRADER)
        approve = r.buttons[0][0].payload
        outcome = await router.handle_callback(approve, TRADER)
        assert "Executed" in outcome.text
        assert "waiting for a price" in (await router.handle_text("/status", TRADER)).text
        await service.monitor.run_cycle()  # the monitor's first look gives the trade a price
        status = (await router.handle_text("/status", TRADER)).text
        assert re.search(rf"P&L [+-]\d+\.\d\d R \([+-]\d+\.\d\d {currency}\) ·", status), status
    finally:
        await service.stop()


async def test_no_range_sentence_is_said_once(tmp_path):
    # January 2025: the EURUSDc file only starts in 2026, so the replay has no bars for it yet: the card
    # says that plainly, once, with the span the data covers (#19), not "no closed candles" three times
    service, clock = await start_core(tmp_path)
    router = make_router(service, service.cfg, chart_dir=tmp_path / "charts")
    try:
        analysis = await service.analyse("EURUSDc")
        assert analysis.range is None and analysis.no_range is not None
        assert analysis.no_range.reason == "no_data_at_replay_time"
        card = (await router.handle_text("/scalp EURUSDc", TRADER)).text
        assert "❌ NO TRADE\nThere is no data for EURUSDc at the replay time (2025-01-03 " in card
        assert "its data covers 2026-05-13 to 2026-07-09" in card
        assert card.count("no data") == 1 and "Blocked by" not in card and "closed M5 candles" not in card
    finally:
        await service.stop()


async def test_trade_lists_do_not_wait_on_a_hung_broker_and_remember_the_currency(tmp_path, monkeypatch):
    import threading
    import time

    from bot import service_facts

    service, clock = await start_core(tmp_path)
    router = make_router(service, service.cfg, chart_dir=tmp_path / "charts")
    journal_closed_trades(service.store, 2)
    monkeypatch.setattr(service_facts, "CURRENCY_TIMEOUT_S", 0.2)
    real = service.broker.account_info
    currency = real().currency
    release = threading.Event()

    def hung():
        release.wait(10)
        return real()

    try:
        service.broker.account_info = hung
        t0 = time.monotonic()
        text = (await router.handle_text("/trades 2", TRADER)).text
        assert time.monotonic() - t0 < 5  # the store answered; the hung broker was not waited for
        assert text.startswith("Last 2 closed trades:") and f" {currency} ·" not in text
        release.set()

        service.broker.account_info = real
        assert f" {currency} ·" in (await router.handle_text("/trades 2", TRADER)).text

        def down():
            raise ConnectionError("broker down")

        service.broker.account_info = down  # asked once per broker: an outage later changes nothing
        assert f" {currency} ·" in (await router.handle_text("/trades 2", TRADER)).text
    finally:
        release.set()
        await service.stop()
