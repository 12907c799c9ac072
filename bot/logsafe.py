"""Keep bot tokens and every other secret (the MT5 password) out of logs.

PTB and httpx log request URLs, and a Telegram URL contains the bot token (`/bot<token>/sendMessage`).
We silence httpx's per-request INFO lines and, as a second line of defence, install a filter on every
root handler that masks any known secret in the formatted message, whatever logger produced it.
"""
from __future__ import annotations

import logging
import re

from core.config.settings import mask_secrets

_TELEGRAM_TOKEN = re.compile(r"(?<!\d)\d{6,12}:[A-Za-z0-9_-]{30,}")


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 6]

    def _clean(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "***")
        return _TELEGRAM_TOKEN.sub("***", mask_secrets(text))

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        cleaned = self._clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._clean(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        return True


def install(secrets: list[str]) -> RedactSecrets:
    """Mask `secrets` on all current root handlers and quieten the chatty HTTP loggers."""
    for name in ("httpx", "httpcore", "telegram.request", "discord.http"):
        logging.getLogger(name).setLevel(logging.WARNING)
    flt = RedactSecrets(secrets)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in root.handlers:
        handler.addFilter(flt)
    return flt
