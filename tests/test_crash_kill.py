"""Crash test (issue 5 "Done when"): the lifecycle on the paper broker, SIGKILLed at random moments.

The driver runs in a fresh interpreter (`bench/crash.py --json`) so that no thread of this test
process is copied into the forked workers; each round forks a worker from it, lets it recover and
trade for a random time, then SIGKILLs it. `bench/crash.py` runs more kills, or `--spawn` for a fresh
interpreter per round.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_sigkill_at_random_moments_keeps_exactly_once_and_a_consistent_journal(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "crash.py"), "--kills", "60", "--min-orders", "50", "--seed", "7",
         "--dir", str(tmp_path), "--json"],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    assert stats["problems"] == [], stats["problems"][:10]
    assert proc.returncode == 0
    assert stats["kills"] >= 50
    # the run did real work between kills, so the invariants were exercised, not vacuous
    assert stats["recoveries"] >= 40
    assert stats["orders"] >= 50
    assert stats["closed_trades"] >= 20
    # every order at the broker belongs to exactly one executed proposal
    assert stats["proposals"].get("executed", 0) == stats["orders"]
