"""Config validation: each rule rejects what it should, all problems at once, with JSON paths."""
from __future__ import annotations

import copy
import json

import pytest

from core.config.loading import ConfigError, load_config, validate_config_dict
from core.config.model import AppConfig, deep_merge
from core.config.paths import DEFAULT_CONFIG_PATH
from core.config.settings import Secrets


@pytest.fixture(scope="module")
def base() -> dict:
    return json.loads(DEFAULT_CONFIG_PATH.read_text())


def _issues(raw: dict) -> dict[str, str]:
    cfg, issues = validate_config_dict(raw)
    assert (cfg is None) == bool(issues)
    return {i.path: i.message for i in issues}


def _set(raw: dict, path: str, value) -> dict:
    out = copy.deepcopy(raw)
    node = out
    keys = path.split("/")
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = value
    return out


def test_default_config_is_valid(base):
    cfg, issues = validate_config_dict(base)
    assert issues == [] and isinstance(cfg, AppConfig)
    assert cfg.execution.lot_size == 0.01
    assert set(cfg.symbols) == {"BTCUSDc", "XAUUSDc", "EURUSDc"}


@pytest.mark.parametrize(
    "path, value, where, words",
    [
        # R:R ordering and the 0.5 floor
        ("strategy_rr/bb_fade/target", 3.0, "strategy_rr.bb_fade", "min <= target <= max"),
        ("strategy_rr/bb_fade/min", 2.0, "strategy_rr.bb_fade", "min <= target <= max"),
        ("strategy_rr/vwap_reversion/min", 0.4, "strategy_rr.vwap_reversion", "below 0.5"),
        # thresholds out of range
        ("entry_filters/price_edge_threshold_atr", 0.0, "entry_filters.price_edge_threshold_atr", "greater than or equal"),
        ("entry_filters/min_strategy_score", 101, "entry_filters.min_strategy_score", "less than or equal"),
        ("entry_filters/rsi_oversold", 75, "entry_filters", "rsi_oversold must be below"),
        ("effective_atr/atr_period", 1, "effective_atr.atr_period", "greater than or equal"),
        ("range_width/min_pct", 2.5, "range_width", "must be below max_pct"),
        ("range_width/max_pct", -1, "range_width.max_pct", "greater than 0"),
        ("range_invalidation/candles_outside_range", 0, "range_invalidation.candles_outside_range", "greater than or equal"),
        ("range_detection/timeframe", "M7", "range_detection.timeframe", "unknown timeframe"),
        ("execution/auto_execute_confidence_threshold", 150, "execution.auto_execute_confidence_threshold", "less than"),
        ("execution/lot_size", 0, "execution.lot_size", "greater than 0"),
        ("monitor/interval_seconds", 0.0, "monitor.interval_seconds", "greater than or equal"),
        ("kill_switch/max_errors_per_hour", 0, "kill_switch.max_errors_per_hour", "greater than or equal"),
        ("error_severity/stale_minutes_medium", 30, "error_severity", "stale_minutes_medium must be below"),
        ("confluence/weights", {"structure": -1.0}, "confluence.weights", "non-negative"),
        ("data_quality/vwap/fallback", "guess", "data_quality.vwap.fallback", "Input should be"),
        ("error_handling/exit_order_fails/action", "panic", "error_handling.exit_order_fails.action", "Input should be"),
        ("alerts/routing/urgent", ["console"], "alerts.routing.urgent", "Input should be"),
        ("news/impacts", ["Huge"], "news.impacts.0", "Input should be"),
        # sessions: time zone, HH:MM, references
        ("sessions/definitions/london/timezone", "Mars/Olympus", "sessions.definitions.london.timezone", "unknown time zone"),
        ("sessions/definitions/london/start", "8:00", "sessions.definitions.london.start", "HH:MM"),
        ("sessions/definitions/london/end", "24:00", "sessions.definitions.london.end", "HH:MM"),
        ("sessions/allowed", ["asian", "sydney"], "sessions", "not defined"),
        ("sessions/block_open_minutes", {"london": 500}, "sessions", "between 0 and 240"),
        # structure
        ("execution/surprise", 1, "execution.surprise", "unknown setting"),
        ("symbols/BTCUSDc/point", 0, "symbols.BTCUSDc.point", "greater than 0"),
        ("symbols/BTCUSDc/data/M7", "x.csv", "symbols.BTCUSDc.data", "unknown timeframe"),
        ("symbols/BTCUSDc/data/5m", "x.csv", "symbols.BTCUSDc.data", "listed twice"),
        ("symbols/BTCUSDc/data_tz_offset_hours", 15, "symbols.BTCUSDc.data_tz_offset_hours", "less than or equal"),
    ],
)
def test_each_rule_rejects(base, path, value, where, words):
    issues = _issues(_set(base, path, value))
    assert where in issues, issues
    assert words in issues[where]


def test_unknown_symbol_in_overrides(base):
    raw = _set(base, "symbol_overrides/GBPUSDc", {"range_width": {"max_pct": 1.0}})
    issues = _issues(raw)
    assert "unknown symbol" in issues["symbol_overrides.GBPUSDc"]
    assert "BTCUSDc" in issues["symbol_overrides.GBPUSDc"]


def test_override_values_are_validated_after_merging(base):
    raw = _set(base, "symbol_overrides/EURUSDc/range_width/min_pct", 1.5)  # its max_pct is 1.0
    issues = _issues(raw)
    assert list(issues) == ["symbol_overrides.EURUSDc.range_width"]
    raw = _set(base, "symbol_overrides/BTCUSDc/broker", {"kind": "mt5"})
    assert "cannot be overridden" in _issues(raw)["symbol_overrides.BTCUSDc.broker"]
    raw = _set(base, "symbol_overrides/BTCUSDc/execution", {"lot_size": -1})
    assert "symbol_overrides.BTCUSDc.execution.lot_size" in _issues(raw)


def test_base_errors_are_not_repeated_per_symbol_even_with_dotted_names(base):
    raw = copy.deepcopy(base)
    raw["symbols"]["EURUSD.m"] = raw["symbols"].pop("EURUSDc")
    raw["symbol_overrides"]["EURUSD.m"] = raw["symbol_overrides"].pop("EURUSDc")
    raw["entry_filters"]["rsi_oversold"] = 80
    _, issues = validate_config_dict(raw)
    assert [i.path for i in issues] == ["entry_filters"]


def test_all_errors_reported_at_once_with_paths(base, tmp_path):
    raw = _set(base, "strategy_rr/bb_fade/min", 0.1)
    raw = _set(raw, "execution/lot_size", 0)
    raw = _set(raw, "sessions/definitions/asian/timezone", "Nowhere/Town")
    raw = _set(raw, "symbol_overrides/XYZ", {})
    raw = _set(raw, "symbol_overrides/BTCUSDc/range_width", {"min_pct": 9.0})
    raw["telegram_token"] = "123:abc"
    _, issues = validate_config_dict(raw)
    paths = {i.path for i in issues}
    assert paths == {
        "strategy_rr.bb_fade",
        "execution.lot_size",
        "sessions.definitions.asian.timezone",
        "symbol_overrides.XYZ",
        "symbol_overrides.BTCUSDc.range_width",
        "telegram_token",
    }
    # and load_config raises one error that lists every one of them
    with pytest.raises(ConfigError) as e:
        _load_text(tmp_path, json.dumps(raw))
    assert len(e.value.issues) == 6
    for p in paths:
        assert p in str(e.value)


def _load_text(tmp_path, text: str):
    p = tmp_path / "cfg.json"
    p.write_text(text)
    return load_config(p)


def test_bad_json_reports_line_and_column(base, tmp_path):
    text = json.dumps(base, indent=2).splitlines()
    text[5] = text[5] + " oops"
    with pytest.raises(ConfigError) as e:
        _load_text(tmp_path, "\n".join(text))
    assert "line 6" in str(e.value) and "invalid JSON" in str(e.value)


def test_missing_file_and_non_object(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.json")
    p = tmp_path / "list.json"
    p.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        load_config(p)


def test_override_merge_btc_vs_eur():
    cfg = load_config()
    btc, eur = cfg.for_symbol("BTCUSDc"), cfg.for_symbol("EURUSDc")
    assert (btc.range_width.min_pct, btc.range_width.max_pct) == (0.15, 3.0)
    assert (eur.range_width.min_pct, eur.range_width.max_pct) == (0.05, 1.0)
    assert btc.range_invalidation.candles_outside_range == 3
    assert eur.range_invalidation.candles_outside_range == 2
    # deep merge: siblings of an overridden key keep the defaults
    assert btc.effective_atr.bb_width_multiplier == 0.6 and eur.effective_atr.bb_width_multiplier == 0.5
    assert btc.effective_atr.atr_period == cfg.effective_atr.atr_period == 14
    assert btc.sessions.allow_outside_sessions is True and eur.sessions.allow_outside_sessions is False
    assert btc.sessions.definitions == eur.sessions.definitions
    # a symbol without overrides sees the defaults
    xau = cfg.for_symbol("XAUUSDc")
    assert xau.range_width == cfg.range_width


def test_deep_merge_does_not_mutate_inputs():
    a = {"x": {"y": 1, "z": [1]}, "k": 1}
    b = {"x": {"y": 2}}
    out = deep_merge(a, b)
    assert out == {"x": {"y": 2, "z": [1]}, "k": 1}
    assert a == {"x": {"y": 1, "z": [1]}, "k": 1}
    out["x"]["z"].append(2)
    assert a["x"]["z"] == [1]


def test_config_version_tracks_values_not_key_order(base):
    cfg1, _ = validate_config_dict(base)
    reordered = json.loads(json.dumps(base, sort_keys=True))
    cfg2, _ = validate_config_dict(dict(reversed(list(reordered.items()))))
    assert cfg1.version == cfg2.version and len(cfg1.version) == 64
    cfg3, _ = validate_config_dict(_set(base, "execution/lot_size", 0.02))
    assert cfg3.version != cfg1.version
    cfg4, _ = validate_config_dict(_set(base, "symbol_overrides/BTCUSDc/range_width/max_pct", 2.9))
    assert cfg4.version != cfg1.version
    # computing per-symbol views must not change the version
    before = cfg1.version
    cfg1.for_symbol("BTCUSDc")
    assert cfg1.version == before and cfg1.short_version == before[:12]


def test_symbol_lookup_helpers():
    cfg = load_config()
    assert cfg.resolve_symbol(" btcusdc ") == "BTCUSDc"
    assert cfg.resolve_symbol("DOGE") is None
    assert cfg.suggest_symbols("BTCUSD") == ["BTCUSDc"]
    assert cfg.suggest_symbols("eurusd") == ["EURUSDc"]
    assert cfg.suggest_symbols("xauusd") == ["XAUUSDc"]  # not every *USDc symbol
    assert cfg.suggest_symbols("FOO") == [] and cfg.suggest_symbols("  ") == []
    assert cfg.unknown_symbol("xauusd").message == "I don't know the symbol 'xauusd'. Did you mean XAUUSDc?"
    assert cfg.unknown_symbol("FOO").message == ("I don't know the symbol 'FOO'. "
                                                 "Symbols I know: XAUUSDc, BTCUSDc, EURUSDc.")


SECRET_NAMES = ("token", "password", "login", "secret", "api_key", "bridge_host")


def test_secrets_never_live_in_the_json(base):
    def keys(node, prefix=""):
        if isinstance(node, dict):
            for k, v in node.items():
                yield f"{prefix}{k}"
                yield from keys(v, f"{prefix}{k}.")

    assert not [k for k in keys(base) if any(s in k.lower() for s in SECRET_NAMES)]
    assert not [f for f in AppConfig.model_fields if any(s in f for s in SECRET_NAMES)]
    # and a token put there is rejected, not silently accepted
    assert "put MONEYBOT_TELEGRAM_TOKEN in .env" in _issues(_set(base, "telegram_token", "1:x"))["telegram_token"]
    assert "put MONEYBOT_MT5_PASSWORD in .env" in _issues(_set(base, "broker/mt5/password", "pw"))["broker.mt5.password"]


def test_secrets_come_from_env_and_do_not_leak(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("MONEYBOT_TELEGRAM_TOKEN", "123456:SUPERSECRETTOKEN")
    monkeypatch.setenv("MONEYBOT_MT5_PASSWORD", "hunter2-pass")
    monkeypatch.setenv("MONEYBOT_TRADER_USER_IDS", "11, 22;33")
    s = Secrets()
    assert s.telegram_token.get_secret_value() == "123456:SUPERSECRETTOKEN"
    assert s.trader_user_ids == [11, 22, 33]
    for text in (repr(s), str(s), str(s.model_dump()), s.model_dump_json()):
        assert "SUPERSECRETTOKEN" not in text and "hunter2-pass" not in text


def test_secrets_from_dotenv_file(monkeypatch, tmp_path):
    for k in ("MONEYBOT_TELEGRAM_TOKEN", "MONEYBOT_DISCORD_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("MONEYBOT_DISCORD_TOKEN=from-dotenv-xyz\nMONEYBOT_VIEWER_USER_IDS=5\n")
    s = Secrets()
    assert s.discord_token.get_secret_value() == "from-dotenv-xyz"
    assert s.viewer_user_ids == [5]
    assert "from-dotenv-xyz" not in repr(s)
    monkeypatch.setenv("MONEYBOT_TRADER_USER_IDS", "abc")
    with pytest.raises(ValueError, match="comma-separated list of integers"):
        Secrets()
