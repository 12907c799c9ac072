"""`moneybot run`: a second Ctrl-C while the graceful stop hangs on a broker call forces the exit.

The broker call that hangs is real code's: a driver interpreter makes `PaperBroker.positions` block
for ever once the runner has started (as a frozen MT5 terminal does), then runs the `moneybot run`
entry point unchanged. The monitor's next cycle is stuck in that call, so the first SIGINT's stop
cannot finish; the second must end the process, non-zero, and leave the store readable.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from core.config.paths import DEFAULT_CONFIG_PATH, PROJECT_ROOT

DRIVER = r"""
import sys, threading
from core.brokers.paper.broker import PaperBroker
from bot.runner import Runner

armed = threading.Event()
real_positions, real_start = PaperBroker.positions, Runner.start

def positions(self, *a, **k):
    if armed.is_set():
        print("HANGING", flush=True)
        threading.Event().wait()  # never returns, like a call into a frozen terminal
    return real_positions(self, *a, **k)

async def start(self):
    await real_start(self)
    armed.set()
    print("STARTED", flush=True)

PaperBroker.positions, Runner.start = positions, start
from bot.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _config(tmp_path):
    raw = json.loads(DEFAULT_CONFIG_PATH.read_text())
    raw["store"] = {"path": str(tmp_path / "moneybot.sqlite")}
    raw["broker"]["paper"]["db_path"] = str(tmp_path / "paper.sqlite")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    return path


def _wait_for_line(proc, text: str, timeout: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"{text!r} not seen; stdout so far: {''.join(seen)!r}")


def test_second_sigint_forces_exit_while_the_stop_hangs_on_a_broker_call(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONEYBOT_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, "--config", str(_config(tmp_path)), "run", "--no-console",
         "--speed", "300"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=PROJECT_ROOT, env=env)
    try:
        _wait_for_line(proc, "STARTED", 90)
        _wait_for_line(proc, "HANGING", 30)  # the monitor's next cycle is now stuck in the broker
        proc.send_signal(signal.SIGINT)
        time.sleep(2.0)
        assert proc.poll() is None  # the graceful stop is waiting on the hung call
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    assert code == 128 + signal.SIGINT
    assert "forcing exit" in err and "Traceback" not in err
    log = (tmp_path / "logs" / "moneybot.log").read_text()
    assert "forcing exit" in log  # flushed before the exit

    from core.domain.clock import SystemClock
    from core.store import Store

    with Store(tmp_path / "moneybot.sqlite", clock=SystemClock()) as store:
        assert store.integrity_ok()


STUCK_LOG = r"""
import logging, threading
from bot.runner import force_exit

class Stalled(logging.Handler):  # a log sink that never returns, like a stderr pipe nobody reads
    def emit(self, record):
        threading.Event().wait()
    def flush(self):
        threading.Event().wait()

logging.getLogger().addHandler(Stalled())
force_exit(2)
"""


def test_the_forced_exit_happens_even_when_the_log_hangs():
    # without the watchdog the child blocks in the handler for ever and `timeout` fails the test
    proc = subprocess.run([sys.executable, "-c", STUCK_LOG], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    assert proc.returncode == 130, proc.stderr
    assert "forcing exit" in proc.stderr
