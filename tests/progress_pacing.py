"""Pace a backtest's worker so progress tests do not depend on the machine's speed.

`ProgressRelay` coalesces: when the worker outruns the chat, only the latest figure is sent. That is
the product's behaviour, but a test that counts edits then depends on how fast the backtest runs
against the event loop (a fast run on a busy CI machine could finish before the loop sent any). The
paced runner waits, after each figure the relay offers, until the chat shows it, so every offered
figure is shown and the count is the product's throttle, not the timing's.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from core.backtest.api import run_backtest


def pct_of(text: str) -> int | None:
    """The percentage of a progress text ("⏳ … 40% (…)"), None for any other text."""
    if not text.startswith("⏳") or "… " not in text:
        return None
    try:
        return int(text.split("… ", 1)[1].split("%", 1)[0])
    except ValueError:
        return None


def paced(shown: Callable[[], list[str]], runner=run_backtest, *, hold_at_half: threading.Event | None = None,
          reached: threading.Event | None = None):
    """`runner` whose progress, after each figure the relay decides to send, waits until `shown()` (the texts
    the chat shows so far) has it, at most 20 s in all (then the test's own assertions judge what came).

    With `reached`/`hold_at_half`, it also stops at half-way: sets `reached`, waits for `hold_at_half`."""
    budget = [20.0]
    delivered = [0]

    def run(cfg, symbol, *, progress, **kw):
        assert hasattr(progress, "_last_pct"), "paced() expects the command's ProgressRelay as `progress`"

        def prog(done: int, total: int) -> None:
            progress(done, total)
            offered = getattr(progress, "_last_pct", 0)  # the last figure the ProgressRelay sent on its way
            if offered > delivered[0] and budget[0] > 0:
                t0 = time.monotonic()
                while time.monotonic() - t0 < budget[0] and not any(
                        (pct_of(t) or 0) >= offered for t in list(shown())):
                    time.sleep(0.005)
                budget[0] -= time.monotonic() - t0
                delivered[0] = offered
            if reached is not None and done >= total // 2 and not reached.is_set():
                reached.set()
                assert hold_at_half is not None and hold_at_half.wait(20), "the test never opened the gate"

        return runner(cfg, symbol, progress=prog, **kw)

    return run
