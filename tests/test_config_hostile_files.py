"""Issue 15.5: config files built to break the parser give one ConfigError line, not a traceback.

Deeply nested JSON raised RecursionError and a 5,000-digit integer ValueError out of `load_config`; a
file over 1 MB is refused before it is read; `config check` on a 200,000-character path gives one line
(it used to echo the whole path), and an OK names the absolute path that was checked."""
from __future__ import annotations

import json
import os

import pytest

from bot.cli import main
from core.config.model import DEFAULT_CONFIG_PATH, MAX_CONFIG_BYTES, ConfigError, load_config


def _one_line(text: str) -> str:
    lines = [x for x in text.splitlines() if x.strip()]
    assert len(lines) == 1, text[:2000]
    assert "Traceback" not in text
    return lines[0]


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_deeply_nested_json_is_a_config_error(tmp_path, depth):
    f = tmp_path / "deep.json"
    f.write_text('{"a": ' + "[" * depth + "]" * depth + "}")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(f)


def test_a_five_thousand_digit_integer_is_a_config_error(tmp_path, base_raw):
    text = json.dumps(base_raw).replace('"lot_size": 0.01', '"lot_size": ' + "9" * 5000, 1)
    assert "9" * 5000 in text
    f = tmp_path / "digits.json"
    f.write_text(text)
    with pytest.raises(ConfigError, match="a number in the file cannot be read") as e:
        load_config(f)
    assert len(str(e.value)) < 400  # the digits are not echoed


def test_a_config_over_one_megabyte_is_refused_before_parsing(tmp_path, base_raw, monkeypatch):
    f = tmp_path / "big.json"
    f.write_text(json.dumps({**base_raw, "padding": " " * MAX_CONFIG_BYTES}))
    import core.config.model as model

    def boom(*a, **k):
        raise AssertionError("parsed a file it should have refused")

    monkeypatch.setattr(model.json, "loads", boom)
    with pytest.raises(ConfigError, match="more than the 1,000,000 a config may have"):
        load_config(f)


def test_config_check_on_a_200000_character_path_is_one_line(capsys):
    rc = main(["config", "check", "x" * 200_000])
    out = capsys.readouterr()
    assert rc == 2 and out.out == ""
    line = _one_line(out.err)
    assert len(line) < 400 and "200000 characters" in line, line[:400]
    # and one made of real folders, which the OS refuses to open
    rc = main(["config", "check", "config/../" * 20_000 + "config/range_scalping.json"])
    out = capsys.readouterr()
    assert rc == 2 and out.out == ""
    assert len(_one_line(out.err)) < 400


def test_config_check_prints_the_absolute_path_it_checked(capsys, tmp_path, monkeypatch):
    assert main(["config", "check"]) == 0
    assert capsys.readouterr().out.startswith(f"OK: {DEFAULT_CONFIG_PATH.resolve()} is valid")
    copy = tmp_path / "mine.json"
    copy.write_text(DEFAULT_CONFIG_PATH.read_text())
    monkeypatch.chdir(tmp_path)
    assert main(["config", "check", "mine.json"]) == 0
    assert capsys.readouterr().out.startswith(f"OK: {copy.resolve()} is valid")
    monkeypatch.setenv("MONEYBOT_CONFIG", str(copy))
    assert main(["config", "check"]) == 0
    assert capsys.readouterr().out.startswith(f"OK: {copy.resolve()} is valid")


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "truncated", "random", "unreadable"])
def test_config_files_that_are_not_configs_exit_2_with_one_line(tmp_path, capsys, case):
    f = tmp_path / "cfg.json"
    good = DEFAULT_CONFIG_PATH.read_text()
    if case == "directory":
        f.mkdir()
    elif case == "empty":
        f.write_text("")
    elif case == "truncated":
        f.write_text(good[: len(good) // 2])
    elif case == "random":
        f.write_bytes(os.urandom(4096))
    elif case == "unreadable":
        f.write_text(good)
        f.chmod(0)
        if os.access(f, os.R_OK):
            pytest.skip("running as a user who can read any file (root)")
    rc = main(["--config", str(f), "config", "check"])
    line = _one_line(capsys.readouterr().err)
    assert rc == 2 and str(f) in line, line


@pytest.fixture
def base_raw():
    return json.loads(DEFAULT_CONFIG_PATH.read_text())
