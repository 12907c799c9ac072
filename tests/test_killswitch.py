"""Kill switch: pause/resume/emergency, config blocks, auto-disable, persistence and audit log."""
from __future__ import annotations

import pytest

from core.config.loading import load_config, validate_config_dict
from core.config.model import deep_merge
from core.store import Store
from core.trading.killswitch import KillSwitch
from tests.store_helpers import T0


def cfg_with(**ks):
    raw = deep_merge(load_config().model_dump(mode="json"), {"kill_switch": ks})
    cfg, issues = validate_config_dict(raw)
    assert not issues
    return cfg


def test_fresh_store_allows_entries(store, clock):
    ks = KillSwitch(store, load_config(), clock)
    assert ks.entries_allowed() and ks.block_reason() is None


def test_pause_and_resume(store, clock):
    ks = KillSwitch(store, load_config(), clock)
    st = ks.pause(42, "news soon")
    assert st.paused and st.by == "42" and st.at == T0
    assert not ks.entries_allowed()
    assert "paused by user 42: news soon" in ks.block_reason()
    clock.advance(60)
    st = ks.resume(42)
    assert ks.entries_allowed() and st.resumed_at == T0 + 60 and st.resumed_by == "42"


def test_emergency_blocks_and_resume_clears_everything(store, clock):
    ks = KillSwitch(store, load_config(), clock)
    ks.auto_disable("3 critical errors")
    st = ks.emergency("7")
    assert st.emergency and st.paused and st.auto_disabled
    assert ks.block_reason() == "Emergency stop by user 7. Use /resume to allow new trades."
    ks.resume("7")
    s = ks.state()
    assert not (s.paused or s.emergency or s.auto_disabled) and ks.entries_allowed()


def test_auto_disable_reports_only_the_first_time(store, clock):
    ks = KillSwitch(store, load_config(), clock)
    assert ks.auto_disable("20 errors in the last hour") is True
    assert ks.auto_disable("21 errors in the last hour") is False
    assert "20 errors" in ks.block_reason()  # the original reason is kept
    assert [h["action"] for h in store.kill_switch.history()] == ["auto_disable"]


@pytest.mark.parametrize("flags, text", [
    ({"enabled": False}, "kill_switch.enabled is false"),
    ({"emergency_disable": True}, "kill_switch.emergency_disable"),
])
def test_config_flags_block_entries_and_cannot_be_resumed_from_chat(store, clock, flags, text):
    ks = KillSwitch(store, cfg_with(**flags), clock)
    assert not ks.entries_allowed() and text in ks.block_reason()
    ks.resume("1")
    assert not ks.entries_allowed()


def test_state_survives_reopen_with_audit_log(tmp_path, clock):
    path = tmp_path / "k.sqlite"
    s1 = Store(path, clock)
    KillSwitch(s1, load_config(), clock).pause("9", "lunch")
    s1.close()
    s2 = Store(path, clock)
    ks = KillSwitch(s2, load_config(), clock)
    assert not ks.entries_allowed() and ks.state().by == "9"
    ks.resume("10")
    assert [(h["action"], h["by"]) for h in s2.kill_switch.history()] == [("pause", "9"), ("resume", "10")]
    s2.close()


def test_cli_pause_and_resume(tmp_path, capsys):
    from bot.cli import main

    path = tmp_path / "cli.sqlite"
    Store(path).close()
    assert main(["state", "pause", "--store", str(path), "--by", "ops", "--reason", "maintenance"]) == 0
    assert "blocked: Trading is paused by ops: maintenance" in capsys.readouterr().out
    s = Store(path)
    assert s.kill_switch.get().paused
    s.close()
    assert main(["state", "resume", "--store", str(path), "--by", "ops"]) == 0
    assert capsys.readouterr().out.strip() == "new entries allowed"


def test_block_reason_names_the_console_and_skips_the_default_reason(store, clock):
    """A console pause used to read "Trading is paused by -1: paused."."""
    from core.domain.wording import CONSOLE_USER_ID

    ks = KillSwitch(store, load_config(), clock)
    ks.pause(CONSOLE_USER_ID)
    assert ks.block_reason() == "Trading is paused by the console. Use /resume to allow new trades."
    ks.pause(12345, "news in 10 minutes")
    assert ks.block_reason() == "Trading is paused by user 12345: news in 10 minutes. Use /resume to allow new trades."
