"""`moneybot ... | head`: a reader that stops early gets no traceback on the terminal."""
from __future__ import annotations

import subprocess
import sys

import pytest

from core.config.paths import PROJECT_ROOT


@pytest.mark.parametrize("args", [["config", "check"]])
def test_closed_pipe_is_not_a_traceback(args):
    p = subprocess.Popen([sys.executable, "-m", "bot.cli", *args], cwd=PROJECT_ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # like `| head -0`: gone before the command prints anything
    err = p.stderr.read().decode()
    p.stderr.close()
    assert p.wait(timeout=60) == 1
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err
