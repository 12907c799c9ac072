"""The README walkthrough, as a new user runs it on a fresh clone (issue #19).

The command and the chat lines are read from README.md itself, so the README cannot drift from what
works. The clone is the tracked files of this tree copied to a temporary folder (no data/, no .env):
`moneybot run` starts there with the console chat on stdin, and the test types what the README says,
waiting for each answer as a person would. It must show the replay clock in the start banner, a
tradeable card, then "✅ Executed", then the take-profit alert, which is good news and not a warning.
"""
from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.config.paths import PROJECT_ROOT, market_data_dir

WALKTHROUGH = re.compile(r"moneybot run --replay-from (\S+) --speed (\S+) +# then: (.+)")


def _readme_walkthrough() -> tuple[str, str, list[str]]:
    m = WALKTHROUGH.search((PROJECT_ROOT / "README.md").read_text(encoding="utf-8"))
    assert m, "README.md lost its walkthrough line (moneybot run --replay-from … --speed …   # then: …)"
    return m.group(1), m.group(2), [x.strip() for x in m.group(3).split(",")]


def _fresh_clone(dest: Path) -> Path:
    """The tracked files of this tree, as `git clone` would give them (uncommitted edits included)."""
    try:
        files = subprocess.run(["git", "-C", str(PROJECT_ROOT), "ls-files", "-z"], capture_output=True,
                               check=True, timeout=30).stdout.decode().split("\0")
    except (OSError, subprocess.SubprocessError):
        pytest.skip("git is not available to list the tracked files")
    for rel in filter(None, files):
        src = PROJECT_ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    assert not list((dest / "data").glob("*.sqlite*")) and not (dest / ".env").exists()  # nothing run yet
    return dest


class _Chat:
    """The console chat of a running `moneybot run`: lines typed on stdin, its output read as it comes."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.out: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in iter(self.proc.stdout.readline, ""):
            self._lines.put(line)
        self._lines.put(None)

    def type(self, text: str) -> None:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while True:
            m = rx.search("".join(self.out))
            if m:
                return m
            try:
                line = self._lines.get(timeout=max(0.05, end - time.monotonic()))
            except queue.Empty:
                line = ""
            if line is None or time.monotonic() > end:
                raise AssertionError(f"never saw {pattern!r}; the chat said:\n{''.join(self.out)}")
            self.out.append(line)


def test_readme_walkthrough_on_a_fresh_clone(tmp_path):
    when, speed, chat_lines = _readme_walkthrough()
    assert chat_lines[:2] == ["/scalp XAUUSDc", "1"], chat_lines
    if not market_data_dir().is_dir():
        pytest.skip(f"the market data is not at {market_data_dir()}")
    clone = _fresh_clone(tmp_path / "MoneyBot")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONEYBOT_")}
    env.update(MONEYBOT_MARKET_DATA=str(market_data_dir()), PYTHONPATH=str(clone), PYTHONUNBUFFERED="1")
    # the README's `.venv/bin/moneybot run …`, with this interpreter on the clone's code
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "--replay-from", when, "--speed", speed],
                            cwd=clone, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8")
    chat = _Chat(proc)
    try:
        stamp = when.replace("T", " ")
        chat.wait_for(rf"Replay clock: {re.escape(stamp)} UTC at {re.escape(speed)}× \(paper broker", 60)
        chat.type(chat_lines[0])
        chat.wait_for(r"✅ TRADEABLE · confidence \d+/100", 60)
        chat.wait_for(r"\[1\] ✅ Approve 1 ", 10)
        chat.type(chat_lines[1])
        ticket = chat.wait_for(r"✅ Executed at [\d.]+ · ticket (\d+)", 30).group(1)
        for line in chat_lines[2:]:
            chat.type(line)
        # the take profit: good news, with when it closed, never styled as a warning
        alert = chat.wait_for(rf"\*\*\* ALERT \*\*\*\n(.+#{ticket} closed: .+)\n(Closed at .+)\nWhy: (.+)\.\n", 120)
        title, first, why = alert.groups()
        assert title.startswith("✅ ") and "⚠️" not in title and "+" in title.split("closed: ")[1][:2], title
        assert why == "take profit hit" and re.search(r" on \d\d \w{3} \d\d:\d\d UTC: ", first), first
        chat.type("/quit")
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    err = proc.stderr.read()
    assert "Traceback" not in "".join(chat.out) + err, err
    log = (clone / "data" / "logs" / "moneybot.log").read_text(encoding="utf-8")
    assert re.search(rf"INFO core\.ops\.alerts: ALERT \[INFO\] XAUUSDc \w+ #{ticket} closed", log)
    assert not re.search(rf"(WARNING|ERROR).*#{ticket} closed", log)
