"""Review: `.env` / environment settings as traders really write them."""
from __future__ import annotations

import json
import logging

import pytest

from bot.cli import main
from core.config.paths import DEFAULT_CONFIG_PATH
from core.config.settings import Secrets


def test_empty_values_mean_unset(monkeypatch):
    # .env.example lists `MONEYBOT_TELEGRAM_CHAT_ID=` etc.: uncommenting them empty must not break start-up
    for name in ("TELEGRAM_CHAT_ID", "DISCORD_GUILD_ID", "DISCORD_ALERT_CHANNEL_ID", "MT5_LOGIN", "MT5_BRIDGE_PORT",
                 "TRADER_USER_IDS", "TELEGRAM_TOKEN"):
        monkeypatch.setenv(f"MONEYBOT_{name}", "")
    s = Secrets(_env_file=None)
    assert s.telegram_chat_id is None and s.discord_guild_id is None and s.mt5_login is None
    assert s.mt5_bridge_port == 18812 and s.trader_user_ids == [] and not s.telegram_token


@pytest.fixture
def tmp_cfg(tmp_path):
    raw = json.loads(DEFAULT_CONFIG_PATH.read_text())
    raw["store"] = {"path": str(tmp_path / "moneybot.sqlite")}
    raw["broker"]["paper"]["db_path"] = str(tmp_path / "paper.sqlite")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield path
    for h in list(root.handlers):  # `run` adds a file handler to the root logger
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)


def test_bad_setting_is_one_line_not_a_traceback(tmp_cfg, monkeypatch, capsys):
    monkeypatch.setenv("MONEYBOT_TRADER_USER_IDS", "@alice")
    monkeypatch.setenv("MONEYBOT_TELEGRAM_CHAT_ID", "my-group-secret-name")
    assert main(["--config", str(tmp_cfg), "run", "--no-console"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert "MONEYBOT_TRADER_USER_IDS" in err and "MONEYBOT_TELEGRAM_CHAT_ID" in err
    assert "my-group-secret-name" not in err  # values are not echoed (it could be a pasted token)
