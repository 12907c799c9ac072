"""Bad input typed at the `moneybot` console script: one clear line on stderr and exit code 2, never a
traceback, and nothing written. Runs on the real config and the real market data."""
from __future__ import annotations

import pytest

from bot.cli import main
from core.domain.clock import FixedClock
from core.store import Store


def _one_line(capsys) -> str:
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err and cap.err.count("\n") == 1, cap.err
    return cap.err


@pytest.mark.parametrize("at", ["1e300", "-1e30", "99999999999999999999", "-99999999999999"])
def test_analyse_at_far_outside_any_calendar_is_one_line(at, capsys):
    # float() reads these, datetime cannot: they used to escape as OverflowError / OSError tracebacks
    assert main(["analyse", "XAUUSDc", f"--at={at}"]) == 2
    assert "not a time I can use" in _one_line(capsys)


@pytest.mark.parametrize(("args", "message"), [
    (["--from=1e300"], "--from: '1e300' is not a time I can use"),
    (["--to=-1e300", "--days", "1"], "--to: '-1e300' is not a time I can use"),
    (["--split=1e300"], "--split: '1e300' is not a time I can use"),
    (["--from", "nan"], "--from: 'nan' is not a time I can use"),
    (["--to", "inf"], "--to: 'inf' is not a time I can use"),
    (["--days", "nan"], "--days must be a positive, finite number of days"),
    (["--days", "inf"], "--days must be a positive, finite number of days"),
    (["--data", "{data}", "--tz-offset", "1000"], "--tz-offset must be between -14 and 14 hours"),
    (["--data", "{data}", "--tz-offset", "nan"], "--tz-offset must be between -14 and 14 hours"),
    (["--tz-offset", "2"], "--tz-offset only applies to a --data file"),
])
def test_backtest_bad_numbers_and_times_are_one_line(args, message, tmp_path, capsys):
    args = [a.replace("{data}", str(tmp_path / "bars.csv")) for a in args]
    (tmp_path / "bars.csv").write_text("time,open,high,low,close\n")
    out = tmp_path / "out"
    assert main(["backtest", "XAUUSDc", "--no-progress", "--out", str(out), *args]) == 2
    assert message in _one_line(capsys)
    assert not out.exists()


def test_backtest_out_that_is_a_file_is_refused_before_the_run(tmp_path, capsys):
    blocker = tmp_path / "report"
    blocker.write_text("not a folder")
    rc = main(["backtest", "XAUUSDc", "--from", "2025-06-02", "--to", "2025-06-03", "--no-progress",
               "--out", str(blocker / "deeper")])
    assert rc == 2
    err = _one_line(capsys)
    assert f"--out {blocker / 'deeper'}" in err and "is not a folder" in err
    assert blocker.read_text() == "not a folder"


def test_backtest_report_that_cannot_be_written_is_one_line(tmp_path, capsys, monkeypatch):
    # the folder check passes (it is a folder and writable), the write itself fails: e.g. a full disk
    import core.backtest.report as report_mod

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report_mod, "write_trades", full_disk)
    rc = main(["backtest", "XAUUSDc", "--from", "2025-06-02", "--to", "2025-06-03", "--no-progress",
               "--out", str(tmp_path)])
    assert rc == 2
    err = _one_line(capsys)
    assert "cannot write the backtest report" in err and "No space left on device" in err


def test_relative_data_and_store_paths_are_read_from_the_current_folder(tmp_path, monkeypatch, capsys):
    # `--data bars.csv` typed in a shell means ./bars.csv, not <project root>/bars.csv ("file not found")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bars.csv").write_text("")
    assert main(["analyse", "XAUUSDc", "--data", "bars.csv"]) == 2
    assert f"{tmp_path / 'bars.csv'}: file is empty" in _one_line(capsys)
    assert main(["backtest", "XAUUSDc", "--data", "bars.csv", "--no-progress", "--out", "out"]) == 2
    assert f"{tmp_path / 'bars.csv'}: file is empty" in _one_line(capsys)
    assert not (tmp_path / "out").exists()

    Store(tmp_path / "here.sqlite", FixedClock(1_750_000_000)).close()
    assert main(["trades", "closed", "--store", "here.sqlite"]) == 0
    assert capsys.readouterr().out.strip() == "No closed trades yet."
    assert main(["state", "export", "--store", "here.sqlite", "--compact"]) == 0
    assert '"kill_switch"' in capsys.readouterr().out
    assert main(["trades", "open", "--store", "missing.sqlite"]) == 2
    assert f"no store at {tmp_path / 'missing.sqlite'}" in _one_line(capsys)


@pytest.mark.parametrize(("args", "message"), [
    (["trades", "closed", "-n", "99999999999999999999999"], "-n must be between 1 and 100000"),
    (["state", "export", "--limit", "99999999999999999999999"], "--limit must be between 1 and 100000"),
    (["trades", "metrics", "--days", "0"], "--days must be at least 1"),
    (["trades", "metrics", "--days", "-1"], "--days must be at least 1"),
])
def test_store_commands_refuse_numbers_out_of_range(args, message, tmp_path, capsys):
    path = tmp_path / "s.sqlite"
    Store(path, FixedClock(1_750_000_000)).close()
    assert main([*args, "--store", str(path)]) == 2
    assert message in _one_line(capsys)


def test_a_config_that_is_not_utf8_text_is_one_line(tmp_path, capsys):
    bad = tmp_path / "cfg.json"
    bad.write_bytes(b"\xff\xfe{\x00}\x00")  # a UTF-16 file, as Windows Notepad may save it
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "is not UTF-8 text" in err and "save it as UTF-8" in err
    assert main(["--config", str(bad), "analyse", "XAUUSDc"]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err


def test_run_replay_from_beyond_any_calendar_is_one_line(capsys):
    assert main(["run", "--no-console", "--replay-from=1e300"]) == 2
    assert "--replay-from: '1e300' is not a time I can use" in _one_line(capsys)


def test_config_check_notes_data_files_that_are_not_there(tmp_path, capsys):
    # a typo in a data path passed the check and surfaced later as "file not found" in a backtest
    import json

    from core.config.paths import DEFAULT_CONFIG_PATH

    raw = json.loads(DEFAULT_CONFIG_PATH.read_text())
    raw["symbols"]["XAUUSDc"]["data"]["M15"] = str(tmp_path / "XAUUSD_M15.csv")
    raw["news"]["calendar_path"] = str(tmp_path / "calendar.json")
    path = tmp_path / "c.json"
    path.write_text(json.dumps(raw))
    assert main(["config", "check", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"OK: {path} is valid")
    assert out[1:] == [
        f"note: symbols.XAUUSDc.data.M15: no file at {tmp_path / 'XAUUSD_M15.csv'} (the paper broker and "
        "backtests read it)",
        f"note: news.calendar_path: no file at {tmp_path / 'calendar.json'} (the news blackout will not be checked)",
    ]
    # the shipped config, on this machine's market data, has every file
    assert main(["config", "check"]) == 0
    assert "note:" not in capsys.readouterr().out


def test_a_path_the_system_refuses_is_one_line_not_a_traceback(tmp_path, capsys):
    # the paper account's folder could not be created (a file is in the way): it was a FileExistsError /
    # NotADirectoryError traceback from deep in the broker; any OSError now ends as one line, exit 1
    import json
    import logging

    from core.config.paths import DEFAULT_CONFIG_PATH

    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    raw = json.loads(DEFAULT_CONFIG_PATH.read_text())
    raw["store"] = {"path": str(tmp_path / "moneybot.sqlite")}
    raw["broker"]["paper"]["db_path"] = str(blocker / "paper.sqlite")
    path = tmp_path / "c.json"
    path.write_text(json.dumps(raw))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        assert main(["--config", str(path), "run", "--no-console"]) == 1
    finally:
        for h in list(root.handlers):  # `run` adds a file handler to the root logger
            if h not in handlers:
                root.removeHandler(h)
                h.close()
        root.setLevel(level)
    err = _one_line(capsys)
    assert err.startswith("error: ") and str(blocker) in err


@pytest.mark.parametrize("symbol", ["x" * 5000, "\x1b[2J\x1b[31mXAU", "XAU\nUSDc"])
def test_an_unknown_symbol_is_echoed_short_and_printable(symbol, capsys):
    # the whole 5000-character argument came back in the error, terminal escape codes included
    assert main(["analyse", symbol]) == 2
    err = _one_line(capsys)
    assert len(err) < 160 and "\x1b" not in err and err.startswith("error: I don't know the symbol '")
    assert main(["backtest", symbol, "--no-progress"]) == 2
    err = _one_line(capsys)
    assert len(err) < 160 and "\x1b" not in err


@pytest.mark.parametrize("when", ["2030-01-01", "1990-01-01"])
def test_run_replay_from_outside_the_market_data_says_where_the_data_is(when, tmp_path, capsys):
    # the replay started on no data at all: every /scalp answered "no closed candles" without saying why
    import json
    import logging

    from core.config.paths import DEFAULT_CONFIG_PATH

    raw = json.loads(DEFAULT_CONFIG_PATH.read_text())
    raw["store"] = {"path": str(tmp_path / "moneybot.sqlite")}
    raw["broker"]["paper"]["db_path"] = str(tmp_path / "paper.sqlite")
    path = tmp_path / "c.json"
    path.write_text(json.dumps(raw))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        assert main(["--config", str(path), "run", "--no-console", "--replay-from", when]) == 2
    finally:
        for h in list(root.handlers):  # `run` adds a file handler to the root logger
            if h not in handlers:
                root.removeHandler(h)
                h.close()
        root.setLevel(level)
    assert not (tmp_path / "paper.sqlite").exists()
    err = _one_line(capsys)
    assert f"--replay-from {when} is outside the market data" in err
    assert "XAUUSDc 2025-01-01 to 2025-10-27" in err


@pytest.mark.parametrize("args", [["state", "export"], ["state", "pause"], ["trades", "open"], ["trades", "closed"],
                                  ["trades", "metrics"], ["trades", "reconcile"]])
def test_a_store_path_to_another_database_is_refused_untouched(args, tmp_path, capsys):
    # `--store data/paper_broker.sqlite` (the paper account, next to the store) got the store's tables
    # added to it by a read-only export
    import sqlite3

    other = tmp_path / "paper_broker.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE positions (ticket INTEGER PRIMARY KEY)")
        db.execute("CREATE TABLE deals (ticket INTEGER PRIMARY KEY)")
    db.close()
    before = other.read_bytes()
    assert main([*args, "--store", str(other)]) == 2
    err = _one_line(capsys)
    assert f"{other} is not a MoneyBot store (its tables: deals, positions)" in err
    assert other.read_bytes() == before


def test_an_oserror_without_words_still_names_the_failure(monkeypatch, capsys):
    # TimeoutError is an OSError: asyncio.wait_for's carries no message, and the line read "error: "
    import bot.cli_config as cli_config

    def times_out(*a, **k):
        raise TimeoutError()

    monkeypatch.setattr(cli_config, "load_config", times_out)
    assert main(["config", "check"]) == 1
    assert _one_line(capsys) == "error: TimeoutError\n"
