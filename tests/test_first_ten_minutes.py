"""Issue #19: what a new user hits in the first ten minutes (replay clock, data spans, wording, CLI)."""
from __future__ import annotations

import json
import logging
import re
import sqlite3
from datetime import UTC, datetime

import pytest
from bot_helpers import STRANGER, TRADER, analysis_from, real_candles, start_core

from bot import presenter
from bot.chart import _alert_title
from bot.cli import main
from bot.console import ConsoleChat
from bot.formatting import _short
from bot.health_text import health_text
from bot.runner import make_router
from core.analysis.pipeline import _no_setup_reason
from core.app import start_banner
from core.config.loading import load_config
from core.config.paths import DEFAULT_CONFIG_PATH, deployment_env
from core.domain.clock import FixedClock
from core.domain.models import ActiveTrade, Alert, ClosedTrade, Direction
from core.store import Store


# ---------------------------------------------------------------- 1, 2: data spans and the replay clock
async def test_banner_and_health_give_the_replay_clock_and_each_symbols_data_span(tmp_path):
    service, clock = await start_core(tmp_path)
    try:
        banner = start_banner(service)
        now = datetime.fromtimestamp(clock.now(), UTC).strftime("%Y-%m-%d %H:%M UTC")
        assert banner.startswith(f"Replay clock: {now} at 1× (paper broker on old market data, not the live market)")
        assert "  XAUUSDc: ✅ data 2025-01-01 to 2025-10-27" in banner
        assert "  EURUSDc: ❌ no data at the replay time (data 2026-05-13 to 2026-07-09)" in banner
        h = service.health()
        assert h.symbols["XAUUSDc"].at_clock and not h.symbols["EURUSDc"].at_clock
        text = health_text(h)
        # a symbol the replay has no bars for is never under a plain ✅ OK
        assert text.splitlines()[0] == ("Health: ⚠️ BTCUSDc: no data at the replay time; "
                                        "EURUSDc: no data at the replay time"), text
        assert f"Replay clock: {now} (paper replay at 1×, not the live market)" in text
        assert "EURUSDc: ❌ no data at the replay time (data 2026-05-13 to 2026-07-09)" in text
    finally:
        await service.stop()


async def test_a_resumed_paper_account_says_so_in_the_banner(tmp_path):
    from core.brokers.paper.store import PaperStore

    later = datetime(2025, 1, 6, 10, 0, tzinfo=UTC).timestamp()
    st = PaperStore(tmp_path / "paper_broker.sqlite", 10_000)
    st.set_meta("clock", repr(later))
    st.close()
    service, clock = await start_core(tmp_path, at=later - 86400)
    try:
        assert clock.now() == later
        assert start_banner(service).startswith("Replay clock: 2025-01-06 10:00 UTC at 1× (paper broker on old "
                                                "market data, not the live market); resumed where this paper "
                                                "account stopped")
    finally:
        await service.stop()


def _cfg_file(tmp_path) -> str:
    raw = json.loads(DEFAULT_CONFIG_PATH.read_text())
    raw["store"] = {"path": str(tmp_path / "data" / "moneybot.sqlite")}
    raw["broker"]["paper"]["db_path"] = str(tmp_path / "data" / "paper.sqlite")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    return str(path)


def test_replay_from_before_the_account_history_is_refused_and_reset_paper_keeps_a_backup(tmp_path, capsys):
    from core.brokers.paper.store import PaperStore

    cfg = _cfg_file(tmp_path)
    st = PaperStore(tmp_path / "data" / "paper.sqlite", 10_000)
    st.set_meta("clock", repr(datetime(2025, 5, 20, 9, 0, tzinfo=UTC).timestamp()))  # it booked up to 09:00
    st.close()
    Store(tmp_path / "data" / "moneybot.sqlite").close()

    assert main(["--config", cfg, "run", "--no-console", "--replay-from", "2025-05-20T07:15"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "--replay-from 2025-05-20T07:15 is before this paper account's history (it has replayed up to " \
           "2025-05-20 09:00 UTC)" in err and "moneybot state reset-paper" in err

    assert main(["--config", cfg, "state", "reset-paper"]) == 0
    out = capsys.readouterr().out
    (backup,) = (tmp_path / "data").glob("backup-*")
    assert str(backup) in out and {p.name for p in backup.iterdir()} >= {"paper.sqlite", "moneybot.sqlite"}
    assert not (tmp_path / "data" / "paper.sqlite").exists()
    con = sqlite3.connect(backup / "paper.sqlite")  # the old account is intact in the backup
    assert con.execute("SELECT value FROM meta WHERE key='clock'").fetchone() is not None
    con.close()
    from bot.cli_run import _after_account_history

    _after_account_history(load_config(cfg), datetime(2025, 5, 20, 7, 15, tzinfo=UTC).timestamp(), "x")  # fresh: fine


async def test_scalp_card_says_plainly_there_is_no_data_at_the_replay_time(tmp_path):
    service, _ = await start_core(tmp_path)
    try:
        card = (await make_router(service, service.cfg, tmp_path).handle_text("/scalp EURUSDc", TRADER)).text
        assert "There is no data for EURUSDc at the replay time" in card
        assert "its data covers 2026-05-13 to 2026-07-09" in card and "Blocked by" not in card
    finally:
        await service.stop()


# ---------------------------------------------------------------- 3: the breakout reason, no cut words
def test_no_setup_reason_after_a_breakout_says_which_way_and_how_far():
    rng = analysis_from(real_candles()).range
    below = _no_setup_reason(rng, rng.range_low - 12.34, 2)
    assert below.startswith(f"The range broke down: the last close {rng.range_low - 12.34:.2f} is 12.34 (")
    assert f"ATR) below the range low {rng.range_low:.2f}" in below and "edge" not in below
    above = _no_setup_reason(rng, rng.range_high + 1.5, 2)
    assert above.startswith("The range broke up:") and "above the range high" in above
    inside = _no_setup_reason(rng, rng.range_mid, 2)
    assert "wait for price to reach an edge of the range" in inside


def test_no_card_line_is_cut_mid_word():
    a = analysis_from(real_candles())
    long = ("No strategy has a setup at the current price: wait for price to reach an edge of the range, "
            "then ask again with /scalp when it does.")
    a = a.model_copy(update={"warnings": [long]})
    card = presenter.analysis_card(a, 2)
    words = set(long.replace(",", " ").replace(":", " ").split())
    for line in card.splitlines():
        assert len(line) <= 92, line
    said = " ".join(ln.strip(" ⚠") for ln in card.splitlines() if ln.startswith("   ") or ln.startswith(" ⚠"))
    assert {w for w in said.replace(",", " ").replace(":", " ").split()} >= words  # every word, whole
    assert _short("wait for price to reach an edge of the range", 40) == "wait for price to reach an edge of the…"


# ---------------------------------------------------------------- 5: /health clocks, heartbeat, offer
async def test_health_labels_its_clocks_and_a_heartbeat_two_intervals_old_is_not_ok(tmp_path):
    service, clock = await start_core(tmp_path)
    try:
        await service.monitor.run_cycle()
        limit = 2 * max(service.monitor.interval, 1.0)
        clock.advance(limit * 0.9)
        h = service.health()
        assert not any("heartbeat" in p for p in h.problems)
        text = health_text(h)
        assert f"heartbeat {limit * 0.9:.0f} s ago (wall clock; late after {limit:.0f} s)" in text
        assert "Last quote age (market time):" in text or not h.data_age_seconds
        clock.advance(limit * 0.2)
        assert any("monitor heartbeat" in p and "wall clock" in p for p in service.health().problems)
    finally:
        await service.stop()


async def test_offer_window_on_the_card_is_the_one_config_states(tmp_path):
    service, _ = await start_core(tmp_path)
    try:
        router = make_router(service, service.cfg, tmp_path)
        card = (await router.handle_text("/scalp XAUUSDc", TRADER)).text
        secs = service.cfg.for_symbol("XAUUSDc").execution.proposal_expiry_seconds
        assert secs == 120 and "Tap Approve within 2 min (wall clock) to trade 0.01 lot." in card
        assert "proposals expire after 120 s" in (await router.handle_text("/config", TRADER)).text
    finally:
        await service.stop()


# ---------------------------------------------------------------- 6: alert styling
def _trade() -> ActiveTrade:
    return ActiveTrade(ticket=100001, symbol="XAUUSDc", strategy="vwap_reversion", direction=Direction.LONG,
                       entry_price=3210.80, sl=3205.39, tp=3216.32, initial_sl=3205.39, volume=0.01,
                       entry_time=1747725300.0)


async def test_a_take_profit_is_good_news_an_invalidation_information_an_exit_failure_critical(tmp_path, caplog):
    service, clock = await start_core(tmp_path)
    got: list[Alert] = []

    async def sink(alert):
        got.append(alert)

    service.alerts.register_sink("telegram", sink)
    try:
        with caplog.at_level(logging.INFO, logger="core.ops.alerts"):
            service.alerts.alert_exit_executed(_trade(), 3216.32, "take_profit", pnl=5.52)
            # what the monitor sends before closing a trade whose range broke (core.exits.monitor)
            service.alerts.send(Alert(kind="range_invalidated", severity="info",
                                      title="RANGE INVALIDATED - XAUUSDc #100001", text="Closing the trade now",
                                      symbol="XAUUSDc", ticket=100001, trade=_trade(), created_at=clock.now()))
            service.alerts.alert_exit_failed(100001, "XAUUSDc", "requote", trade=_trade())
            await service.alerts.drain()
        tp, inv, failed = got  # all three reach the trader's chat
        assert tp.severity == "info" and inv.severity == "info" and failed.severity == "critical"
        tp_text = presenter.alert_text(tp)
        assert tp_text.startswith("✅ XAUUSDc LONG #100001 closed: +1.02 R") and "⚠️" not in tp_text
        at = datetime.fromtimestamp(clock.now(), UTC).strftime("%d %b %H:%M UTC")
        assert f"Closed at 3216.32 on {at}:" in tp_text  # when it closed
        assert presenter.alert_text(inv).startswith("ℹ️ RANGE INVALIDATED")
        assert presenter.alert_text(failed).startswith("🚨 EXIT FAILED")
        levels = {r.getMessage().split("]", 1)[1].split(":", 1)[0].strip(): r.levelno for r in caplog.records
                  if r.getMessage().startswith("ALERT [")}
        assert levels["XAUUSDc LONG #100001 closed"] == logging.INFO
        assert levels["RANGE INVALIDATED - XAUUSDc #100001"] == logging.INFO
        assert levels["EXIT FAILED - XAUUSDc #100001"] == logging.CRITICAL
        assert not any("[HIGH]" in r.getMessage() for r in caplog.records)
        assert _alert_title(tp).count("LONG") == 1 and "LONG ▲" in _alert_title(tp)
    finally:
        await service.stop()


def test_invalidation_during_a_trade_is_not_logged_as_an_error():
    cfg = load_config()
    assert cfg.error_severity.map["range_invalidation_during_trade"] == "info"


# ---------------------------------------------------------------- 8: Telegram onboarding
async def test_allowlist_refusal_shows_the_users_own_id(tmp_path):
    service, _ = await start_core(tmp_path)
    try:
        reply = await make_router(service, service.cfg, tmp_path).handle_text("/status", STRANGER)
        assert reply.kind == "refusal"
        assert f"Your user id is {STRANGER}" in reply.text and "MONEYBOT_TRADER_USER_IDS" in reply.text
        assert "restart" in reply.text
    finally:
        await service.stop()


def test_config_and_market_data_are_read_from_dotenv_too(tmp_path, monkeypatch):
    monkeypatch.delenv("MONEYBOT_CONFIG", raising=False)
    monkeypatch.delenv("MONEYBOT_MARKET_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    cfg = _cfg_file(tmp_path)
    (tmp_path / ".env").write_text(f"MONEYBOT_CONFIG={cfg}\nMONEYBOT_MARKET_DATA=/srv/market\n", encoding="utf-8")
    assert deployment_env("MONEYBOT_CONFIG") == cfg
    assert str(tmp_path / "data" / "moneybot.sqlite") == load_config().store.path  # the .env's config file
    from core.config.paths import market_data_dir

    assert str(market_data_dir()) == "/srv/market"
    monkeypatch.setenv("MONEYBOT_MARKET_DATA", "/env/wins")
    assert str(market_data_dir()) == "/env/wins"


async def test_telegram_base_url_from_config_or_env(tmp_path, monkeypatch):
    from bot import runner as runner_mod
    from core.config.settings import Secrets

    seen = {}

    class Front:
        def __init__(self, router, token, **kw):
            seen.update(kw)

        async def connect(self):
            raise RuntimeError("no network in tests")

        async def stop(self):
            pass

    monkeypatch.setattr("bot.telegram_bot.TelegramFrontEnd", Front)
    service, _ = await start_core(tmp_path, overrides={"telegram": {"base_url": "http://cfg:8081/bot"}})
    try:
        token = "123456:" + "A" * 35
        r = runner_mod.Runner(service, service.cfg, Secrets(_env_file=None, telegram_token=token), console=False)
        with pytest.raises(RuntimeError):
            await r._open_telegram()
        assert seen["base_url"] == "http://cfg:8081/bot"
        monkeypatch.setenv("MONEYBOT_TELEGRAM_BASE_URL", "http://env:8081/bot")
        r = runner_mod.Runner(service, service.cfg, Secrets(_env_file=None, telegram_token=token), console=False)
        with pytest.raises(RuntimeError):
            await r._open_telegram()
        assert seen["base_url"] == "http://env:8081/bot"
    finally:
        await service.stop()


# ---------------------------------------------------------------- 9: the CLI and the console
def test_analyse_never_says_viable_under_no_trade_and_its_header_has_no_dangling_separator(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["analyse", "BTCUSDc", "--at", "2025-05-20T07:15"]) == 0
    out = capsys.readouterr().out
    assert "NO TRADE" in out.splitlines()[0]
    assert not any(ln.rstrip().endswith("·") for ln in out.splitlines()), out
    assert "viable" not in out.split("Strategies", 1)[1].split("\n  ", 1)[0] and "blocked" in out


def _journal(tmp_path) -> str:
    t0 = 1_750_000_000.0
    with Store(tmp_path / "s.sqlite", clock=FixedClock(t0)) as st:
        st.closed.add(ClosedTrade(ticket=5, symbol="XAUUSDc", strategy="rsi_bounce", direction=Direction.LONG,
                                  volume=0.01, entry_price=3290.0, exit_price=3296.0, initial_sl=3287.0, tp=3296.0,
                                  entry_time=t0 - 3600, exit_time=t0 - 600, pnl=6.0, commission=-0.1,
                                  r_multiple=2.0, exit_reason="take_profit", session="london"))
        st.kv.set("account_currency", "USC")
    return str(tmp_path / "s.sqlite")


def test_trades_closed_and_metrics_say_money_with_its_currency_and_reasons_in_words(tmp_path, capsys):
    path = _journal(tmp_path)
    assert main(["trades", "closed", "--store", path]) == 0
    out = capsys.readouterr().out
    assert "P&L +5.90 USC (take profit hit)" in out and "take_profit" not in out
    assert main(["trades", "metrics", "--store", path]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Metrics, all time: 1 trade\nP&L +5.90 USC")
    assert "money in USC" in out
    assert "in-sample" not in out and "out-of-sample" not in out  # a live journal has no such split


async def test_a_console_message_without_a_slash_says_to_type_help(tmp_path):
    import io

    service, _ = await start_core(tmp_path)
    try:
        out = io.StringIO()
        chat = ConsoleChat(make_router(service, service.cfg, tmp_path), stdin=io.StringIO("hello\nstatus\n"),
                           stdout=out, chart_dir=tmp_path)
        await chat.run()
        text = out.getvalue()
        assert "type /help" in text and "Unknown command /hello" not in text
        assert "Open range scalps" in text or "No open range scalps" in text  # "status" still works bare
    finally:
        await service.stop()


# ---------------------------------------------------------------- 4: the chart on a phone
def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_chart_marks_a_far_range_edge_keeps_the_trade_boxes_and_merges_entry_with_last():
    from bot.chart import analysis_figure, render_analysis_chart

    candles = real_candles()
    bars = candles[-120:]
    a = analysis_from(candles)
    lo, hi = float(bars["low"].min()), float(bars["high"].max())
    span = hi - lo
    far = a.range.model_copy(update={"range_high": hi + 5 * span, "range_low": lo,
                                     "range_mid": (hi + 5 * span + lo) / 2})
    last = float(bars["close"][-1])
    strat = a.strategies[0].model_copy(update={"entry": last + 10 ** -2, "stop_loss": last + 0.3 * span,
                                                "take_profit": last - 0.45 * span})
    a = a.model_copy(update={"range": far, "strategies": [strat]})
    fig = analysis_figure(candles, a, 2, strategy=strat)
    ax = fig.axes[0]
    y0, y1 = ax.get_ylim()
    assert y1 < far.range_high  # the far edge does not squeeze the candles into a band...
    assert f"▲ range high {far.range_high:.2f} (off the chart)" in _texts(fig)  # ...it is marked at the edge
    assert f"range low {lo:.2f}" in _texts(fig)  # the near one is drawn where it is
    assert y0 <= min(strat.stop_loss, strat.take_profit) and max(strat.stop_loss, strat.take_profit) <= y1
    texts = _texts(fig)
    assert not any(re.match(r"last \d", t) for t in texts)  # entry and last within a tick: one tag
    assert f"entry {strat.entry:.2f}" in texts and "last = entry " in texts
    assert render_analysis_chart(candles, a, 2, strategy=strat).startswith(b"\x89PNG")


# ---------------------------------------------------------------- 9: catch-up alerts keep their chart
async def test_a_close_alert_caught_up_after_a_restart_carries_its_chart(tmp_path):
    import lifecycle_helpers as k

    from core.ops.alerts import RangeScalpingAlerts

    cfg = k.config({})
    clock = FixedClock(datetime(2025, 5, 20, 7, 55, tzinfo=UTC).timestamp())
    store = Store(tmp_path / "store.sqlite", clock)
    rng = analysis_from(real_candles()).range
    trade = _trade().model_copy(update={"range_data": rng})
    dying = RangeScalpingAlerts(cfg.alerts, clock, store)  # the run that logged it, then died
    dying.register_sink("telegram", lambda a: None)
    dying.alert_exit_executed(trade, 3216.32, "take_profit", pnl=5.52)
    store.close()

    clock.advance(120)
    svc = k.service(cfg, tmp_path, clock)
    got: list[Alert] = []

    async def telegram(alert):
        got.append(alert)

    svc.alerts.register_sink("telegram", telegram)
    await svc.start(monitor=False)
    await svc.alerts.drain()
    try:
        (late,) = got
        assert late.trade == trade and late.range_data == rng and late.exit_price == 3216.32
        reply = await make_router(svc, svc.cfg, tmp_path).alert_reply(late)
        assert reply.image is not None and reply.image.startswith(b"\x89PNG")
    finally:
        await svc.stop()
