"""Issue 15.3: every secret in settings is masked, the MT5 password included (it has no token shape, so
the log filter that masked tokens let it through).

A full `moneybot run` session (console chat, paper broker) with every secret set in the environment,
then `config check` and `state export`: every output and every file written is grepped for each secret.
In-process, exception texts, error records and /config are checked the same way."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from bot_helpers import TRADER, start_core

from bot import logsafe
from bot.cli import main
from bot.commands import CommandRouter
from core.config.model import DEFAULT_CONFIG_PATH, PROJECT_ROOT
from core.config.settings import Secrets

SECRETS = {
    "MONEYBOT_MT5_PASSWORD": "Hunter2-pw-XQ7",
    "MONEYBOT_TELEGRAM_TOKEN": "123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQ",
    "MONEYBOT_DISCORD_TOKEN": "discord-secret-token-ZZ9",
}


def _tmp_config(tmp_path: Path) -> Path:
    raw = json.loads(DEFAULT_CONFIG_PATH.read_text())
    raw["store"] = {"path": str(tmp_path / "data" / "moneybot.sqlite")}
    raw["broker"]["paper"]["db_path"] = str(tmp_path / "data" / "paper.sqlite")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    return path


def _cli(tmp_path: Path, args: list[str], stdin: str | None = None, secrets: dict | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONEYBOT_")}
    env["MONEYBOT_CONFIG"] = str(_tmp_config(tmp_path))
    env.update(secrets or {})
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120, cwd=PROJECT_ROOT, env=env)


def _leaks(text: str | bytes, where: str) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [f"{name} in {where}" for name, v in SECRETS.items() if v.encode() in data]


def test_a_full_session_never_shows_a_secret(tmp_path):
    # the chat tokens are set for `config check` and `state export` (which never connect); `run` gets the
    # MT5 password only, so it does not try to reach Telegram/Discord from a test
    run_env = {"MONEYBOT_MT5_PASSWORD": SECRETS["MONEYBOT_MT5_PASSWORD"], "MONEYBOT_MT5_LOGIN": "5550123"}
    pw = SECRETS["MONEYBOT_MT5_PASSWORD"]
    session = _cli(tmp_path, ["run"], stdin=f"/scalp {pw}\n/config {pw}\n/config\n/backtest {pw} 3\n/scalp XAUUSDc\n"
                                              f"/health\n/quit\n", secrets=run_env)
    assert session.returncode == 0, session.stderr[-2000:]
    assert "I don't know the symbol '***'" in session.stdout  # the typed password is answered, masked
    outputs = {"run stdout": session.stdout, "run stderr": session.stderr}
    check = _cli(tmp_path, ["config", "check"], secrets=SECRETS)
    assert check.returncode == 0 and check.stdout.startswith("OK: "), check.stderr
    outputs |= {"config check": check.stdout + check.stderr}
    export = _cli(tmp_path, ["state", "export"], secrets=SECRETS)
    assert export.returncode == 0, export.stderr
    json.loads(export.stdout)
    outputs |= {"state export": export.stdout + export.stderr}
    leaks = [x for where, text in outputs.items() for x in _leaks(text, where)]
    files = [f for f in tmp_path.rglob("*") if f.is_file()]
    assert any(f.suffix == ".log" for f in files) and any(f.name == "moneybot.sqlite" for f in files)
    leaks += [x for f in files for x in _leaks(f.read_bytes(), str(f.relative_to(tmp_path)))]
    assert leaks == []


async def test_exception_texts_error_records_config_and_export_mask_the_password(tmp_path, capsys):
    pw = SECRETS["MONEYBOT_MT5_PASSWORD"]
    Secrets(mt5_password=pw, _env_file=None)  # what `moneybot run` reads from .env / the environment
    root = logging.getLogger()
    log_file = tmp_path / "session.log"
    handler = logging.FileHandler(log_file)
    root.addHandler(handler)
    flt = logsafe.install([])
    service, clock = await start_core(tmp_path, overrides={"news": {"calendar_path": f"data/news/{pw}.csv"}})
    try:
        router = CommandRouter(service, service.cfg)
        try:
            raise RuntimeError(f"MT5 login 5550123 with password {pw} was refused")
        except RuntimeError as e:
            logging.getLogger("core.brokers.mt5").exception("connect failed: %s", e)
            service.notifier.error("broker_connection_lost", f"connect failed: {e}")
        reply = await router.handle_text("/config", TRADER)
        assert "news" in reply.text or "config" in reply.text.lower()
        assert pw not in reply.text and pw not in json.dumps(service.effective_config())
        assert pw not in json.dumps(service.effective_config("XAUUSDc"))
        assert all(pw not in e.message for e in service.store.errors.recent(20))
    finally:
        await service.stop()
        handler.flush()
        root.removeHandler(handler)
        for h in root.handlers:
            h.removeFilter(flt)
    text = log_file.read_text()
    assert "was refused" in text and pw not in text
    capsys.readouterr()
    assert main(["state", "export", "--store", str(tmp_path / "moneybot.sqlite")]) == 0
    out = capsys.readouterr().out
    assert "connect failed" in out and pw not in out
