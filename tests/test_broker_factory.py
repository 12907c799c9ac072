"""make_broker: paper by default, MT5 locally on Windows or over a bridge, clear set-up messages otherwise."""
from __future__ import annotations

import json
import socket
import sys
import tomllib

import pytest

from core.brokers.base import Broker
from core.brokers.factory import make_broker
from core.brokers.paper.broker import PaperBroker
from core.config.loading import load_config, validate_config_dict
from core.config.paths import DEFAULT_CONFIG_PATH, PROJECT_ROOT
from core.config.settings import Secrets
from core.domain.clock import FixedClock
from core.domain.exceptions import UserFacingError
from core.domain.timeframes import Timeframe


def config(kind: str):
    raw = json.loads(DEFAULT_CONFIG_PATH.read_text())
    raw["broker"]["kind"] = kind
    cfg, issues = validate_config_dict(raw)
    assert not issues
    return cfg


@pytest.fixture
def no_bridge(monkeypatch):
    monkeypatch.delenv("MONEYBOT_MT5_BRIDGE_HOST", raising=False)
    monkeypatch.delenv("MONEYBOT_MT5_BRIDGE_PORT", raising=False)


def test_paper_is_built_from_config_and_real_data(tmp_path):
    cfg = load_config()
    t = 1741600800.0  # 2025-03-10 10:00 UTC, inside the XAUUSD file
    b = make_broker(cfg, Secrets(_env_file=None), FixedClock(t), db_path=tmp_path / "paper.sqlite")
    assert isinstance(b, PaperBroker) and isinstance(b, Broker)
    bars = b.candles("XAUUSDc", Timeframe.M15, 4)
    assert len(bars) == 4 and bars["time"][-1] + 900 <= t
    assert b.symbol_info("XAUUSDc").trade_stops_level == 20
    b.close()


def test_mt5_on_linux_without_bridge_explains_the_setup(no_bridge):
    with pytest.raises(UserFacingError) as e:
        make_broker(config("mt5"), Secrets(_env_file=None), platform="linux")
    text = e.value.message
    for needle in ("MONEYBOT_MT5_BRIDGE_HOST", "MONEYBOT_MT5_BRIDGE_PORT", "pymt5linux", "rpyc"):
        assert needle in text
    assert "\n" not in text
    # MoneyBot is installed from its checkout: the install line names it, not a same-named registry package
    assert "pip install -e '.[bridge]'" in text and "moneybot[bridge]" not in text


def test_moneybot_run_with_mt5_on_linux_says_how_to_set_up_a_bridge(no_bridge, tmp_path, capsys, monkeypatch):
    if sys.platform == "win32":
        pytest.skip("Linux behaviour")
    from bot.cli import main

    raw = json.loads(DEFAULT_CONFIG_PATH.read_text())
    raw["broker"]["kind"] = "mt5"
    path = tmp_path / "mt5.json"
    path.write_text(json.dumps(raw))
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    assert main(["--config", str(path), "run", "--no-console"]) == 2
    err = capsys.readouterr().err
    assert "MONEYBOT_MT5_BRIDGE_HOST" in err and "Traceback" not in err


def test_unreachable_bridge_is_a_user_facing_error():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    secrets = Secrets(_env_file=None, mt5_bridge_host="127.0.0.1", mt5_bridge_port=port)
    with pytest.raises(UserFacingError) as e:
        make_broker(config("mt5"), secrets, platform="linux")
    assert "pymt5linux" in e.value.message and str(port) in e.value.message


def test_windows_without_the_package_says_what_to_install(no_bridge, monkeypatch):
    monkeypatch.setitem(sys.modules, "MetaTrader5", None)  # import fails as on a machine without it
    with pytest.raises(UserFacingError) as e:
        make_broker(config("mt5"), Secrets(_env_file=None), platform="win32")
    assert "moneybot[mt5]" in e.value.message


def test_windows_uses_the_local_package_with_config_policies(no_bridge, monkeypatch):
    from fakes import fake_mt5

    monkeypatch.setitem(sys.modules, "MetaTrader5", fake_mt5)
    b = make_broker(config("mt5"), Secrets(_env_file=None), platform="win32")
    assert b.mt5 is fake_mt5
    assert (b.connection_policy.max_retries, b.connection_policy.interval) == (3, 5.0)
    assert (b.order_policy.max_retries, b.order_policy.interval) == (2, 1.0)


def test_pip_install_on_linux_does_not_pull_metatrader5():
    from packaging.requirements import Requirement

    meta = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert not any(Requirement(r).name.lower() == "metatrader5" for r in meta["dependencies"])
    linux = {"sys_platform": "linux", "platform_system": "Linux", "python_version": "3.11", "extra": "mt5"}
    for group in meta["optional-dependencies"].values():
        for r in map(Requirement, group):
            if r.name.lower() == "metatrader5":
                assert r.marker is not None and not r.marker.evaluate(linux)
