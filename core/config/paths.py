"""Where MoneyBot's files are: the project root, the default config, the shared market data, and the
deployment settings (MONEYBOT_CONFIG, MONEYBOT_MARKET_DATA) that move them.

Kept apart from the config models (`core.config.model`) and the loader (`core.config.loading`) because
data loaders, stores and front ends need these paths without caring how a config is validated.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config" / "range_scalping.json"


def deployment_env(name: str) -> str | None:
    """A deployment setting (MONEYBOT_CONFIG, MONEYBOT_MARKET_DATA) from the environment, else from the
    `.env` in the folder MoneyBot starts from, like the secrets: one file to edit, not two places."""
    value = os.environ.get(name)
    if value:
        return value
    if not os.path.isfile(".env"):  # os.path, not pathlib: asked on every order send (the news calendar)
        return None
    try:
        from dotenv import dotenv_values

        value = dotenv_values(Path(".env"), encoding="utf-8").get(name)
    except (OSError, UnicodeDecodeError, ValueError):  # the secrets loader reports a broken .env in words
        return None
    return (value.strip() or None) if isinstance(value, str) else None


def market_data_dir() -> Path:
    """Where the shared real market data lives (overridable for other checkouts)."""
    return _market_dir(deployment_env("MONEYBOT_MARKET_DATA"))


@lru_cache(maxsize=16)
def _market_dir(env: str | None) -> Path:
    return Path(env) if env else (PROJECT_ROOT.parent / "shared" / "data" / "market")


def resolve_path(text: str) -> Path:
    """Expand `${MARKET_DATA}` and make relative paths relative to the project root, not the cwd."""
    env = deployment_env("MONEYBOT_MARKET_DATA") if "${MARKET_DATA}" in text else None
    return _resolve(text, env, os.environ.get("HOME", ""))


@lru_cache(maxsize=256)
def _resolve(text: str, market_env: str | None, _home: str) -> Path:
    """Pure in its arguments (`_home` keys what `expanduser` reads), so remembered: the news check
    resolves the calendar's path on every order send."""
    expanded = text.replace("${MARKET_DATA}", str(_market_dir(market_env))) if "${MARKET_DATA}" in text else text
    p = Path(expanded).expanduser()
    return p if p.is_absolute() else PROJECT_ROOT / p
