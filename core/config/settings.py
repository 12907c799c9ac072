"""Secrets and per-deployment identities, read only from the environment or `.env`.

They are kept out of the JSON config on purpose: the config is committed, versioned, hashed and
shown in `/config`; tokens and account credentials must never be any of those. SecretStr keeps them
out of reprs and logs.
"""
from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _id_list(v):
    if v is None or v == "":
        return []
    if isinstance(v, (list, tuple, set)):
        return [int(x) for x in v]
    return [int(x) for x in str(v).replace(";", ",").split(",") if x.strip()]


IdList = Annotated[list[int], NoDecode]
MIN_SECRET_CHARS = 4  # shorter values would mask ordinary words and numbers everywhere
_KNOWN_SECRETS: set[str] = set()  # every secret any Secrets() of this process has read


def secret_values(secrets: BaseSettings) -> list[str]:
    """The plain values of every SecretStr field (tokens, the MT5 password, any added later)."""
    out = []
    for name in type(secrets).model_fields:
        v = getattr(secrets, name, None)
        if isinstance(v, SecretStr) and len(v.get_secret_value().strip()) >= MIN_SECRET_CHARS:
            out.append(v.get_secret_value().strip())
    return out


def remember_secrets(values) -> None:
    """Add values that `mask_secrets` must hide from now on (logs, error texts, /config, exports)."""
    _KNOWN_SECRETS.update(v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_CHARS)


def mask_secrets(text: str) -> str:
    """`text` with every known secret value replaced by ***: patterns catch token shapes, but a password
    has no shape, so the values themselves are masked wherever they appear."""
    out = str(text)
    for v in sorted(_KNOWN_SECRETS, key=len, reverse=True):
        if v in out:
            out = out.replace(v, "***")
    return out
_TELEGRAM_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")


def mask_secrets_in(node):
    """`mask_secrets` over every string in a JSON-like tree (a config view for /config)."""
    if isinstance(node, dict):
        return {k: mask_secrets_in(v) for k, v in node.items()}
    if isinstance(node, list):
        return [mask_secrets_in(v) for v in node]
    return mask_secrets(node) if isinstance(node, str) else node


class Secrets(BaseSettings):
    # `NAME=` left empty (as in .env.example) means unset, not "an invalid integer"
    model_config = SettingsConfigDict(env_prefix="MONEYBOT_", env_file=".env", extra="ignore", env_ignore_empty=True)

    telegram_token: SecretStr | None = None
    telegram_chat_id: int | None = None
    telegram_base_url: str | None = None  # a self-hosted Bot API server (else config telegram.base_url)
    discord_token: SecretStr | None = None
    discord_alert_channel_id: int | None = None
    discord_guild_id: int | None = None
    # Roles: traders may approve, close and pause; viewers may only read.
    trader_user_ids: IdList = Field(default_factory=list)
    viewer_user_ids: IdList = Field(default_factory=list)
    mt5_login: int | None = None
    mt5_password: SecretStr | None = None
    mt5_server: str | None = None
    mt5_bridge_host: str | None = None
    mt5_bridge_port: int = Field(default=18812, ge=1, le=65535)
    # MCP over HTTP (bot/mcp_server): the bearer tokens; MCP_TOKEN has config mcp.access_role, the other "viewer"
    mcp_token: SecretStr | None = None
    mcp_viewer_token: SecretStr | None = None

    def model_post_init(self, __context) -> None:
        remember_secrets(secret_values(self))  # whoever reads the secrets, they are masked from then on

    @field_validator("telegram_token", "discord_token", "mcp_token", "mcp_viewer_token", mode="before")
    @classmethod
    def _blank_is_unset(cls, v):
        # `NAME=   ` or a Windows line end: spaces are never part of a token, and a token of spaces
        # used to start the bot and fail at the network with no word about the setting
        if isinstance(v, str):
            v = v.strip()
            return v or None
        return v

    @field_validator("telegram_token")
    @classmethod
    def _telegram_shape(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not _TELEGRAM_TOKEN.match(v.get_secret_value()):
            raise ValueError("does not look like a Telegram bot token (digits, a colon, then letters): "
                             "copy it from @BotFather")
        return v

    @field_validator("trader_user_ids", "viewer_user_ids", mode="before")
    @classmethod
    def _parse_ids(cls, v):
        try:
            return _id_list(v)
        except ValueError:
            raise ValueError("user ids must be a comma-separated list of integers") from None
