"""Console chat: driven through stdin, in-process on the real core and as the real `moneybot run`."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from bot_helpers import start_core

from bot.console import ConsoleChat
from bot.runner import make_router
from core.config.paths import DEFAULT_CONFIG_PATH, PROJECT_ROOT


async def test_console_scalp_choose_button_status_and_eof(tmp_path):
    service, clock = await start_core(tmp_path)
    try:
        router = make_router(service, service.cfg, chart_dir=tmp_path / "charts")
        out = io.StringIO()
        stdin = io.StringIO("/scalp xauusdc\n1\n/status\n9\nscalp nope\n/trades x\n")
        chat = ConsoleChat(router, stdin=stdin, stdout=out, chart_dir=tmp_path / "charts")
        service.alerts.register_sink("console", chat.on_alert)
        await chat.run()  # returns at EOF
        text = out.getvalue()
        assert text.startswith("MoneyBot console chat") and "/scalp XAUUSDc" in text
        assert "✅ TRADEABLE" in text and "[1] ✅ Approve 1" in text
        charts = list((tmp_path / "charts").glob("XAUUSDc_*.png"))
        assert charts and charts[0].read_bytes().startswith(b"\x89PNG") and f"chart: {charts[0]}" in text
        ticket = service.broker.positions()[0].ticket
        assert "✅ Executed at" in text and f"ticket {ticket}" in text
        assert f"#{ticket} XAUUSDc LONG" in text  # /status
        assert "No button with that number" in text
        assert "I don't know the symbol 'nope'" in text
        assert "Usage: /trades [n]" in text
        assert text.rstrip().endswith("bye (end of input)")
        assert "Traceback" not in text
    finally:
        await service.stop()


def _tmp_config(tmp_path: Path) -> Path:
    raw = json.loads(DEFAULT_CONFIG_PATH.read_text())
    raw["store"] = {"path": str(tmp_path / "data" / "moneybot.sqlite")}
    raw.setdefault("broker", {}).setdefault("paper", {})["db_path"] = str(tmp_path / "data" / "paper.sqlite")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    return path


def _run(tmp_path: Path, stdin: str | None, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONEYBOT_")}
    env["MONEYBOT_CONFIG"] = str(_tmp_config(tmp_path))
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"], input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT, env=env,
    )


def test_moneybot_run_console_subprocess(tmp_path):
    res = _run(tmp_path, "/scalp XAUUSDc\n/scalp EURUSDc\n/health\n/bogus\n/quit\n")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert out.startswith("MoneyBot console chat") and "Try:  /scalp XAUUSDc" in out
    assert "XAUUSDc M5 ·" in out and "chart: " in out
    # EURUSDc may have no bars at the replay instant: a card or an apology with an error id, never a traceback
    assert "EURUSDc M5 ·" in out or "error id" in out
    assert "Health:" in out and "Unknown command /bogus" in out
    assert "No market data" not in out  # the real data is there: no fallback notice
    assert "\nbye\n" in out
    assert "Traceback" not in out + res.stderr
    assert (tmp_path / "data" / "logs" / "moneybot.log").exists()


def test_moneybot_run_with_closed_stdin_exits_cleanly(tmp_path):
    res = _run(tmp_path, None)
    assert res.returncode == 0, res.stderr
    assert "bye (end of input)" in res.stdout and "Traceback" not in res.stderr


def test_fresh_clone_without_market_data_replays_bundled_real_eurusd(tmp_path):
    env_extra = {"MONEYBOT_MARKET_DATA": str(tmp_path / "no-such-dir")}
    res = _run(tmp_path, "/scalp eurusdc\n/scalp XAUUSDc\n", env_extra)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "Try:  /scalp EURUSDc" in out and "Symbols: EURUSDc" in out
    # it says why only EURUSDc exists and where it looked, before the first command
    assert out.index(f"No market data in {tmp_path / 'no-such-dir'}: replaying the EUR/USD H1 bars") < out.index(
        "EURUSDc H1 ·")
    assert "set MONEYBOT_MARKET_DATA" in out
    assert "EURUSDc H1 ·" in out  # a real card on the bundled hourly bars
    chart = next(line.split("chart: ", 1)[1] for line in out.splitlines() if line.startswith("chart: "))
    assert Path(chart).read_bytes().startswith(b"\x89PNG") and Path(chart).is_relative_to(tmp_path)
    assert "I don't know the symbol 'XAUUSDc'. Did you mean EURUSDc?" in out
    assert "Traceback" not in out + res.stderr
