"""Who may do what, decided in core rather than in each chat adapter.

The bots check too, but a replayed Telegram callback or a new front end that forgets a check must not
be able to place a trade: `TradingService` asks this module before every state-changing call, so the
allowlist holds whatever the entry point. Roles come from `core.config.settings.Secrets` (env / .env only).
"""
from __future__ import annotations

import logging
from enum import StrEnum

from core.domain.exceptions import NotAuthorizedError
from core.domain.wording import CONSOLE_USER_ID, as_user_id

log = logging.getLogger(__name__)

class Role(StrEnum):
    NONE = "none"
    VIEWER = "viewer"
    TRADER = "trader"


# Actions that change money or risk need a trader; everything else is a read.
TRADER_ACTIONS = frozenset({"approve", "reject", "close", "pause", "resume", "emergency", "propose"})
READ_ACTIONS = frozenset({"read", "analyse", "status", "trades", "metrics", "config", "health"})

_REFUSALS = {
    Role.NONE: "Sorry, you are not on this bot's allowlist, so I can't do that for you.",
    Role.VIEWER: "Sorry, your account can view trades but not {action} them; ask a trader.",
}


class Authorizer:
    def __init__(self, trader_ids=(), viewer_ids=(), local_operator_ids=(CONSOLE_USER_ID,)) -> None:
        self._traders = {int(x) for x in trader_ids} | {int(x) for x in local_operator_ids}
        self._viewers = {int(x) for x in viewer_ids}

    @classmethod
    def from_secrets(cls, secrets) -> Authorizer:
        return cls(secrets.trader_user_ids, secrets.viewer_user_ids)

    def role_of(self, user_id: int | str | None) -> Role:
        uid = as_user_id(user_id)
        if uid is None:
            return Role.NONE
        if uid in self._traders:
            return Role.TRADER
        if uid in self._viewers:
            return Role.VIEWER
        return Role.NONE

    def allowed(self, user_id: int | str | None, action: str) -> bool:
        role = self.role_of(user_id)
        if action in TRADER_ACTIONS:
            return role is Role.TRADER
        return role in (Role.TRADER, Role.VIEWER)

    def check(self, user_id: int | str | None, action: str) -> Role:
        """Raise `NotAuthorizedError` (a trader-readable refusal) unless `user_id` may do `action`."""
        role = self.role_of(user_id)
        if not self.allowed(user_id, action):
            log.warning("refused %s for user %r (role %s)", action, user_id, role.value)
            verb = {"approve": "approve", "reject": "reject", "close": "close", "propose": "propose"}.get(
                action, "change"
            )
            raise NotAuthorizedError(_REFUSALS[role].format(action=verb))
        return role
