"""Fixtures shared by the store, error-handler, alert and kill-switch tests, and the network guard.

A module that needs a different clock or store defines its own fixture of the same name, which
takes precedence over these.
"""
from __future__ import annotations

import pytest

from core.domain.clock import FixedClock
from core.store import Store
from tests import netguard
from tests.store_helpers import T0


@pytest.fixture(autouse=True, scope="session")
def _no_network():
    """Loopback only, for the whole run (see tests/netguard.py)."""
    with pytest.MonkeyPatch.context() as mp:
        netguard.install(mp)
        yield


@pytest.fixture
def clock():
    return FixedClock(T0)


@pytest.fixture
def store(tmp_path, clock):
    s = Store(tmp_path / "s.sqlite", clock)
    yield s
    s.close()
