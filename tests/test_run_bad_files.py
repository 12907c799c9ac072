"""Issue 15.4: every file `moneybot run` opens, when it is missing, unreadable, empty, truncated, random
bytes, or a folder where a file belongs, gives exit 2 and one line naming the file and what to do (or a
clean start where a first run creates the thing) — never a traceback.

A corrupt data/paper_broker.sqlite used to end `moneybot run` with `sqlite3.DatabaseError: file is not a
database` and exit 1; a corrupt market data file or a file where the chart folder belongs was silently
skipped (no chart, no data for that symbol)."""
from __future__ import annotations

import builtins
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from core.config.model import DEFAULT_CONFIG_PATH, PROJECT_ROOT, load_config, resolve_path

CASES = ["missing", "unreadable", "empty", "truncated", "random", "directory"]
GOOD_CSV = resolve_path(load_config().symbols["XAUUSDc"].data["M5"])


@pytest.fixture(autouse=True)
def _logging_restored():
    """`run` points the root logger at data/logs: put every handler back afterwards."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    saved = [(h, h.level, h.formatter, list(h.filters)) for h in before]
    yield
    for h in list(root.handlers):
        if h not in before:
            root.removeHandler(h)
            h.close()
    for h, lvl, fmt, filters in saved:
        h.setLevel(lvl)
        h.setFormatter(fmt)
        h.filters[:] = filters
    root.setLevel(level)


def _world(tmp_path: Path) -> dict[str, Path]:
    raw = json.loads(DEFAULT_CONFIG_PATH.read_text())
    data = tmp_path / "data"
    data.mkdir()
    raw["store"] = {"path": str(data / "moneybot.sqlite")}
    raw["broker"]["paper"]["db_path"] = str(data / "paper_broker.sqlite")
    csv = tmp_path / "XAUUSD_M5.csv"
    shutil.copy(GOOD_CSV, csv)
    raw["symbols"]["XAUUSDc"]["data"]["M5"] = str(csv)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(raw))
    env = tmp_path / ".env"
    env.write_text("MONEYBOT_TRADER_USER_IDS=1\n")
    return {"config": cfg, "env": env, "market": csv, "store": data / "moneybot.sqlite",
            "paper": data / "paper_broker.sqlite", "charts": data / "charts"}


def _sqlite(path: Path, table: str) -> bytes:
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE {table} (x INTEGER)")
        db.executemany(f"INSERT INTO {table} VALUES (?)", [(i,) for i in range(5000)])
    data = path.read_bytes()
    path.unlink()
    return data


def _spoil(path: Path, case: str, good: bytes, monkeypatch) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    if case == "missing":
        return
    if case == "directory":
        path.mkdir()
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "truncated":
        path.write_bytes(good[: len(good) // 2 + 7])
    elif case == "random":
        path.write_bytes(os.urandom(8192))
    elif case == "unreadable":
        path.write_bytes(good)
        real_open = builtins.open

        def refusing(file, *a, **k):  # chmod 0 does not stop root: refuse the read the way the OS would
            if Path(str(file)).resolve() == path.resolve():
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *a, **k)

        monkeypatch.setattr(builtins, "open", refusing)
        monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: (
            (_ for _ in ()).throw(PermissionError(13, "Permission denied", str(self)))
            if self.resolve() == path.resolve() else Path.read_bytes(self).decode(k.get("encoding") or "utf-8")))


# (file, case) -> None: a clean start is right (a first run creates it / it is optional)
CLEAN_START = {("env", "missing"), ("env", "empty"), ("env", "truncated"), ("charts", "missing"), ("charts", "directory"),
               ("store", "missing"), ("store", "empty"), ("paper", "missing"), ("paper", "empty")}
# sqlite opens files in C: the Python-level refusal above cannot reach it (covered by chmod in the
# subprocess test below when not running as root)
SKIP = {("store", "unreadable"), ("paper", "unreadable")}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("what", ["config", "env", "market", "store", "paper", "charts"])
def test_each_file_each_fault_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, what, case):
    if (what, case) in SKIP:
        pytest.skip("sqlite reads the file in C")
    files = _world(tmp_path)
    good = {"config": files["config"].read_bytes(), "env": files["env"].read_bytes(),
            "market": files["market"].read_bytes(), "store": _sqlite(tmp_path / "s.db", "proposals"),
            "paper": _sqlite(tmp_path / "p.db", "positions"), "charts": b"not a folder\n" * 100}[what]
    monkeypatch.chdir(tmp_path)  # .env is read from the folder `moneybot run` starts in
    monkeypatch.delenv("MONEYBOT_CONFIG", raising=False)
    _spoil(files[what], case, good, monkeypatch)
    if (what, case) in CLEAN_START:
        from bot.file_checks import check_run_files

        check_run_files(load_config(files["config"]), files["charts"], tmp_path / ".env")  # no complaint
        return
    rc = main(["--config", str(files["config"]), "run", "--no-console"])
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.strip()]
    assert rc == 2, (rc, err[-1500:])
    assert len(lines) == 1 and "Traceback" not in err, err[-1500:]
    shown = files[what] if what != "env" else files["env"].resolve()
    assert str(shown) in lines[0], lines[0]


def test_a_corrupt_paper_account_ends_moneybot_run_with_one_line(tmp_path):
    files = _world(tmp_path)
    files["paper"].write_bytes(os.urandom(4096))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONEYBOT_")}
    env["MONEYBOT_CONFIG"] = str(files["config"])
    res = subprocess.run([sys.executable, "-m", "bot.cli", "run"], input="/quit\n", capture_output=True, text=True,
                         timeout=120, cwd=PROJECT_ROOT, env=env)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "Traceback" not in res.stderr + res.stdout
    (line,) = [x for x in res.stderr.splitlines() if x.strip()]
    assert str(files["paper"]) in line and "Move the file aside" in line, line
