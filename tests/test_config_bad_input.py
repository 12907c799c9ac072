"""Bad values a trader types into config/range_scalping.json or .env: each problem named with its path and
what to do about it, never silently accepted, never a traceback."""
from __future__ import annotations

import copy
import json
import logging

import pytest
from pydantic import ValidationError

from bot.cli import main
from core.config.loading import validate_config_dict
from core.config.paths import DEFAULT_CONFIG_PATH
from core.config.settings import Secrets


@pytest.fixture(scope="module")
def base() -> dict:
    return json.loads(DEFAULT_CONFIG_PATH.read_text())


def _issues(raw: dict) -> dict[str, str]:
    cfg, issues = validate_config_dict(raw)
    assert cfg is None and issues
    return {i.path: i.message for i in issues}


def _with(base: dict, fn) -> dict:
    raw = copy.deepcopy(base)
    fn(raw)
    return raw


def test_a_misspelt_key_names_the_key_it_probably_meant(base):
    raw = _with(base, lambda r: (r["execution"].update(lot_sizee=0.02), r["exits"].update(breakeven_triger_r=1)))
    issues = _issues(raw)
    assert issues["execution.lot_sizee"] == "unknown setting; did you mean 'lot_size'?"
    assert issues["exits.breakeven_triger_r"] == "unknown setting; did you mean 'breakeven_trigger_r'?"
    # in a symbol's override and inside dict-valued sections too
    raw = _with(base, lambda r: r["symbol_overrides"].setdefault("XAUUSDc", {}).update(
        {"execution": {"lot_szie": 0.02}}))
    assert _issues(raw)["symbol_overrides.XAUUSDc.execution.lot_szie"] == "unknown setting; did you mean 'lot_size'?"
    raw = _with(base, lambda r: r["strategy_rr"]["bb_fade"].update(taget=1.5))
    assert _issues(raw)["strategy_rr.bb_fade.taget"] == "unknown setting; did you mean 'target'?"


def test_an_unknown_key_without_a_near_name_says_so_and_a_secret_is_sent_to_env(base):
    issues = _issues(_with(base, lambda r: r.update(colour="blue")))
    assert issues["colour"].startswith("unknown setting") and "did you mean" not in issues["colour"]
    issues = _issues(_with(base, lambda r: r.update(telegram_token="1:x")))
    assert issues["telegram_token"] == "secrets are not read from the config: put MONEYBOT_TELEGRAM_TOKEN in .env"
    issues = _issues(_with(base, lambda r: r["broker"]["mt5"].update(password="pw")))
    assert issues["broker.mt5.password"] == "secrets are not read from the config: put MONEYBOT_MT5_PASSWORD in .env"


def test_nan_and_infinity_are_not_numbers_a_config_may_hold(base):
    # Python's json reads NaN/Infinity; a NaN lot used to be reported as 'should be less than or equal to 100'
    issues = _issues(_with(base, lambda r: (r["execution"].update(lot_size=float("nan")),
                                            r["exits"].update(max_minutes_in_trade=float("inf")))))
    assert issues["execution.lot_size"] == "Input should be a finite number"
    assert issues["exits.max_minutes_in_trade"] == "Input should be a finite number"


def test_a_lot_the_broker_would_round_or_raise_is_refused(base):
    # order_checks.normalise_lot silently sends volume_min or the nearest step: 0.005 became 0.01 (twice
    # the risk asked for), 0.015 became 0.02
    issues = _issues(_with(base, lambda r: r["execution"].update(lot_size=0.005)))
    assert issues["execution.lot_size"].startswith("0.005 lot is below XAUUSDc's volume_min 0.01")
    issues = _issues(_with(base, lambda r: r["execution"].update(lot_size=0.015)))
    assert issues["execution.lot_size"].startswith("0.015 lot is not a multiple of XAUUSDc's volume_step 0.01")
    # a symbol's own override is checked against that symbol's spec, at the override's path
    raw = _with(base, lambda r: (r["symbols"]["BTCUSDc"].update(volume_min=0.1, volume_step=0.1),
                                 r["symbol_overrides"].setdefault("BTCUSDc", {}).update(execution={"lot_size": 0.1}),
                                 r["symbol_overrides"].setdefault("EURUSDc", {}).update(execution={"lot_size": 0.25}),
                                 r["symbols"]["EURUSDc"].update(volume_step=0.1)))
    issues = _issues(raw)
    assert list(issues) == ["symbol_overrides.EURUSDc.execution.lot_size"]
    assert "not a multiple of EURUSDc's volume_step 0.1" in issues["symbol_overrides.EURUSDc.execution.lot_size"]
    # the shipped lot and ordinary multiples pass
    for lot in (0.01, 0.03, 0.07, 1.0):
        cfg, issues = validate_config_dict(_with(base, lambda r, lot=lot: r["execution"].update(lot_size=lot)))
        assert issues == [] and cfg is not None, (lot, issues)


def test_config_check_prints_every_problem_and_exits_2(base, tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(_with(base, lambda r: (r["execution"].update(lot_size=0.015),
                                                      r["symbol_overrides"]["BTCUSDc"].update(exits={"stal_minutes": 5})))))
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "2 problem(s)" in err
    assert "symbol_overrides.BTCUSDc.exits.stal_minutes: unknown setting; did you mean 'stall_minutes'?" in err
    assert "execution.lot_size: 0.015 lot is not a multiple of XAUUSDc's volume_step 0.01" in err


# ---------------------------------------------------------------- .env / environment
def _env(monkeypatch, **values):
    for k, v in values.items():
        monkeypatch.setenv(f"MONEYBOT_{k.upper()}", v)
    return Secrets(_env_file=None)


@pytest.mark.parametrize("blank", ["   ", "\t", ' \r'])
def test_a_blank_token_means_unset(monkeypatch, blank):
    # `MONEYBOT_TELEGRAM_TOKEN=   ` started the Telegram bot with a token of spaces (NetworkError at start-up)
    s = _env(monkeypatch, telegram_token=blank, discord_token=blank)
    assert s.telegram_token is None and s.discord_token is None


def test_tokens_lose_stray_whitespace(monkeypatch):
    s = _env(monkeypatch, telegram_token=" 123456:ABC-def_ghi \r", discord_token=" abc.def.ghi ")
    assert s.telegram_token.get_secret_value() == "123456:ABC-def_ghi"
    assert s.discord_token.get_secret_value() == "abc.def.ghi"


def test_a_telegram_token_that_cannot_be_one_is_refused_without_echoing_it(monkeypatch):
    with pytest.raises(ValidationError) as e:
        _env(monkeypatch, telegram_token="my-bot-password")
    text = str(e.value)
    assert "does not look like a Telegram bot token" in text and "@BotFather" in text


def test_a_bridge_port_outside_1_65535_is_refused(monkeypatch):
    with pytest.raises(ValidationError, match="less than or equal to 65535"):
        _env(monkeypatch, mt5_bridge_port="99999999")
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        _env(monkeypatch, mt5_bridge_port="0")


def test_bad_env_values_stop_run_with_one_line(base, tmp_path, monkeypatch, capsys):
    raw = _with(base, lambda r: (r.update(store={"path": str(tmp_path / "moneybot.sqlite")}),
                                 r["broker"]["paper"].update(db_path=str(tmp_path / "paper.sqlite"))))
    (tmp_path / "config.json").write_text(json.dumps(raw))
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("MONEYBOT_TELEGRAM_TOKEN=hunter2\nMONEYBOT_MT5_BRIDGE_PORT=99999999\n")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        assert main(["--config", str(tmp_path / "config.json"), "run", "--no-console"]) == 2
    finally:
        for h in list(root.handlers):  # `run` adds a file handler to the root logger
            if h not in handlers:
                root.removeHandler(h)
                h.close()
        root.setLevel(level)
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert "MONEYBOT_TELEGRAM_TOKEN: does not look like a Telegram bot token" in err
    assert "MONEYBOT_MT5_BRIDGE_PORT" in err and "hunter2" not in err


@pytest.mark.parametrize("content", [b"\xff\xfeM\x00O\x00", b"MONEYBOT_TRADER_USER_IDS=1\nMONEYBOT_MT5_SERVER=Br\xf6ker\n"])
def test_an_env_file_that_is_not_utf8_is_one_line(content, base, tmp_path, monkeypatch, capsys):
    # Notepad's "Unicode" (UTF-16) or a Latin-1 umlaut: a UnicodeDecodeError traceback at start-up
    raw = _with(base, lambda r: (r.update(store={"path": str(tmp_path / "moneybot.sqlite")}),
                                 r["broker"]["paper"].update(db_path=str(tmp_path / "paper.sqlite"))))
    (tmp_path / "config.json").write_text(json.dumps(raw))
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_bytes(content)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        assert main(["--config", str(tmp_path / "config.json"), "run", "--no-console"]) == 2
    finally:
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
                h.close()
        root.setLevel(level)
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert ".env is not UTF-8 text" in err and "save it as UTF-8" in err


# ---------------------------------------------------------------- the file itself
def _load_text(tmp_path, text: str | bytes):
    from core.config.loading import ConfigError, load_config

    path = tmp_path / "c.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    try:
        return load_config(path), []
    except ConfigError as e:
        return None, [str(i) for i in e.issues]


def test_a_utf8_file_with_a_byte_order_mark_loads(tmp_path):
    # Notepad's "UTF-8 with BOM" was 'invalid JSON at line 1, column 1: Unexpected UTF-8 BOM'
    cfg, issues = _load_text(tmp_path, b"\xef\xbb\xbf" + DEFAULT_CONFIG_PATH.read_bytes())
    assert issues == [] and cfg is not None and "XAUUSDc" in cfg.symbols


def test_an_empty_file_says_it_is_empty(tmp_path):
    assert _load_text(tmp_path, "  \n")[1] == ["the file is empty: start from a copy of config/range_scalping.json"]


def test_a_key_written_twice_is_an_error_not_a_silent_last_wins(tmp_path):
    text = DEFAULT_CONFIG_PATH.read_text().replace('"lot_size": 0.01,', '"lot_size": 0.01, "lot_size": 0.5,', 1)
    assert text.count('"lot_size"') == 2
    cfg, issues = _load_text(tmp_path, text)
    assert issues == ["execution.lot_size: written twice (0.01, then 0.5): keep one"]


def test_true_or_false_where_a_number_belongs_is_refused(base):
    # pydantic reads true as 1.0: `"lot_size": true` would have traded 1 lot, 100x the default
    issues = _issues(_with(base, lambda r: (r["execution"].update(lot_size=True),
                                            r["exits"].update(max_reentries_per_range=False))))
    assert issues["execution.lot_size"] == "true is not a number"
    assert issues["exits.max_reentries_per_range"] == "false is not a number"


def test_an_unknown_strategy_name_in_strategy_rr_is_refused(base):
    # a typo'd name used to be accepted (and offered by `moneybot backtest --strategy`)
    raw = _with(base, lambda r: r["strategy_rr"].update(bb_fad={"min": 1, "target": 1.5, "max": 2}))
    assert _issues(raw)["strategy_rr"] == ("unknown strategy 'bb_fad'; did you mean 'bb_fade'? (strategies: "
                                           "bb_fade, liquidity_sweep, pdh_pdl_rejection, rsi_bounce, vwap_reversion)")
    raw = _with(base, lambda r: r["symbol_overrides"]["BTCUSDc"].update(strategy_rr={"breakout": {
        "min": 1, "target": 1.5, "max": 2}}))
    assert "unknown strategy 'breakout' (strategies: " in _issues(raw)["symbol_overrides.BTCUSDc.strategy_rr"]


def test_an_override_for_a_symbol_in_the_wrong_case_names_the_configured_one(base):
    raw = _with(base, lambda r: r["symbol_overrides"].update(xauusdc={"execution": {"lot_size": 0.02}}))
    assert _issues(raw)["symbol_overrides.xauusdc"] == "unknown symbol; did you mean 'XAUUSDc'? (names are case-sensitive)"


def test_a_config_with_one_problem_is_one_line(base, tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(_with(base, lambda r: r["execution"].update(lot_size=-0.01))))
    assert main(["--config", str(path), "analyse", "XAUUSDc"]) == 2
    assert capsys.readouterr().err == f"error: config {path}: execution.lot_size: Input should be greater than 0\n"
    assert main(["config", "check", str(path)]) == 2
    assert capsys.readouterr().err == f"INVALID: config {path}: execution.lot_size: Input should be greater than 0\n"


def test_a_name_where_an_id_belongs_says_a_number_is_wanted(tmp_path, monkeypatch):
    from bot.cli_run import _secrets

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MONEYBOT_TELEGRAM_CHAT_ID", "@my_group")
    monkeypatch.setenv("MONEYBOT_MT5_LOGIN", "12345.5")
    from core.domain.exceptions import UserFacingError

    with pytest.raises(UserFacingError) as e:
        _secrets(Secrets)
    assert e.value.message == (
        "bad setting in the environment or .env: MONEYBOT_TELEGRAM_CHAT_ID: must be a whole number (digits only, "
        "not a @name); MONEYBOT_MT5_LOGIN: must be a whole number (digits only, not a @name)")


def test_the_store_and_the_paper_account_cannot_share_a_file(base):
    # both schemas went into one SQLite file: the paper account and the journal then shared one database
    raw = _with(base, lambda r: (r.update(store={"path": "data/shared.sqlite"}),
                                 r["broker"]["paper"].update(db_path="./data/shared.sqlite")))
    assert _issues(raw) == {"broker.paper.db_path": "is the same file as store.path: give the paper account its own "
                                                    "file, e.g. data/paper_broker.sqlite"}


def test_a_text_value_written_twice_is_not_echoed(tmp_path):
    """A pasted block with a token in it must not print the token back to the terminal."""
    text = DEFAULT_CONFIG_PATH.read_text().replace('"lot_size": 0.01,',
                                                   '"lot_size": 0.01, "note": "123456:SECRET", "note": "x",', 1)
    _, issues = _load_text(tmp_path, text)
    said = " ".join(issues)
    assert "execution.note: written twice: keep one" in issues and "SECRET" not in said
