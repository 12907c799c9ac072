"""`moneybot run --replay-from/--speed`: choose where the paper replay starts, or get one clear error."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from bot.cli import main
from core.config.paths import DEFAULT_CONFIG_PATH, PROJECT_ROOT


@pytest.mark.parametrize(("args", "message"), [
    (["--replay-from", "garbage"], "'garbage' is not a date"),
    (["--speed", "0"], "--speed must be above 0"),
    (["--speed", "-3"], "--speed must be above 0"),
])
def test_bad_replay_options_give_one_line_and_exit_2(args, message, capsys):
    assert main(["run", "--no-console", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_replay_options_refused_for_the_mt5_broker(tmp_path, capsys):
    raw = json.loads(DEFAULT_CONFIG_PATH.read_text())
    raw["broker"]["kind"] = "mt5"
    cfg = tmp_path / "mt5.json"
    cfg.write_text(json.dumps(raw))
    assert main(["--config", str(cfg), "run", "--no-console", "--speed", "5"]) == 2
    assert "only apply to the paper broker" in capsys.readouterr().err


def test_replay_from_starts_the_paper_replay_there_and_a_trade_can_be_approved(tmp_path):
    raw = json.loads(DEFAULT_CONFIG_PATH.read_text())
    raw["store"] = {"path": str(tmp_path / "moneybot.sqlite")}
    raw["broker"]["paper"]["db_path"] = str(tmp_path / "paper.sqlite")
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(raw))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONEYBOT_")}
    # the M5 bar of 2025-05-20 07:10 UTC is a real XAUUSD vwap_reversion long setup (found with `moneybot analyse --at`)
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--config", str(cfg), "run", "--replay-from", "2025-05-20T07:15",
         "--speed", "1"], input="/scalp xauusdc\n1\n/status\n", capture_output=True, text=True, timeout=120,
        cwd=PROJECT_ROOT, env=env)
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr
    assert "XAUUSDc M5 · 20 May 07:15 UTC" in out and "✅ TRADEABLE" in out
    ticket = re.search(r"✅ Executed at [\d.]+ · ticket (\d+)", out)
    assert ticket, out
    assert f"#{ticket.group(1)} XAUUSDc LONG" in out  # /status lists the new position
    assert "Traceback" not in out + proc.stderr
