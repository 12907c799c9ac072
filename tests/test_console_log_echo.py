"""`moneybot run` with the console chat: alerts are printed once (as the chat's card), not also echoed
as log lines, while other errors still reach the terminal."""
from __future__ import annotations

import io
import logging

import pytest

from bot import cli_run


@pytest.fixture
def terminal():
    """A terminal handler on the root logger; every handler's level, format and filters are put back."""
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root.addHandler(handler)
    before, level = list(root.handlers), root.level
    saved = [(h, h.level, h.formatter, list(h.filters)) for h in before]
    try:
        yield stream
    finally:
        for h in list(root.handlers):
            if h not in before:
                root.removeHandler(h)
                h.close()
        for h, lvl, fmt, filters in saved:
            h.setLevel(lvl)
            h.setFormatter(fmt)
            h.filters[:] = filters
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.mark.parametrize("console", [True, False])
def test_alert_log_lines_stay_out_of_the_console_chat(terminal, tmp_path, console):
    cli_run._log_to_file(tmp_path / "logs" / "moneybot.log", console=console)
    alerts = logging.getLogger("core.ops.alerts")
    alerts.error("ALERT [%s] %s: %s", "HIGH", "XAUUSDc", "range scalp closed")
    alerts.error("alert %r NOT delivered to %s after %d attempt(s): %s", "closed", "telegram", 3, "timeout")
    logging.getLogger("core.trading.killswitch").critical("kill switch: EMERGENCY")
    out = terminal.getvalue()
    assert ("range scalp closed" in out) is not console  # printed by the console sink instead
    assert "NOT delivered" in out and "kill switch: EMERGENCY" in out
    assert f"(details in {tmp_path / 'logs' / 'moneybot.log'})" in out  # the log this run really writes
    for h in logging.getLogger().handlers:
        h.flush()
    logged = (tmp_path / "logs" / "moneybot.log").read_text()
    assert "range scalp closed" in logged  # the file log keeps everything
