"""Crash test (issue 5 "Done when"): the lifecycle on the paper broker, SIGKILLed at random moments.

The worker (bench/crash.py) is forked per round so that 60 restarts fit in CI; `bench/crash.py`
runs more, or with a fresh interpreter per round (`--spawn`).
"""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _crash_module():
    spec = importlib.util.spec_from_file_location("moneybot_bench_crash", ROOT / "bench" / "crash.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_sigkill_at_random_moments_keeps_exactly_once_and_a_consistent_journal(tmp_path, caplog):
    caplog.set_level(logging.ERROR)
    crash = _crash_module()
    stats = crash.run(kills=60, workdir=tmp_path, seed=7, log=lambda *_: None)
    assert stats["problems"] == [], stats["problems"][:10]
    assert stats["kills"] >= 50
    # the run did real work between kills, so the invariants were exercised, not vacuous
    assert stats["recoveries"] >= 40
    assert stats["orders"] >= 50
    assert stats["closed_trades"] >= 20
    executed = stats["proposals"].get("executed", 0)
    assert executed == stats["orders"]  # every order at the broker belongs to exactly one executed proposal
