"""The rpyc link from this (Linux) Python to the MetaTrader5 package in a Wine Python (pymt5linux).

Kept apart from the adapter because a proxy is not the object it stands for, in two ways that matter:
- Arguments: a local dict passed to a remote function arrives there as a proxy, and the package's C
  code wants a real dict, so `order_send` would refuse every request. Requests are therefore built on
  the far side (`remote_dict`), from plain values that rpyc sends by value.
- Lifetime: every proxy dies with its connection. When the Wine Python restarts, the old module proxy
  answers EOFError for ever; `reopen()` makes a new connection (and module proxy) so that the adapter's
  reconnect policy can recover without restarting the bot.
"""
from __future__ import annotations

import logging
from typing import Any

from core.brokers.base import BrokerConnectionError

log = logging.getLogger(__name__)


class BridgeLink:
    def __init__(self, host: str, port: int, module: str = "MetaTrader5") -> None:
        self.host, self.port, self.module = host, port, module
        self._conn: Any = None
        self.mt5: Any = None
        self._builtins: Any = None
        self.reopen()

    def reopen(self) -> Any:
        """A fresh connection; returns its MetaTrader5 module proxy. BrokerConnectionError if unreachable."""
        import rpyc

        try:
            conn = rpyc.classic.connect(self.host, self.port)
            mt5, builtins = conn.modules[self.module], conn.modules.builtins
        except (OSError, EOFError) as e:
            raise BrokerConnectionError(
                f"cannot reach the MT5 bridge at {self.host}:{self.port}: {e}", None) from e
        if self._conn is not None:
            log.warning("MT5 bridge %s:%s reconnected", self.host, self.port)
        self.close()
        self._conn, self.mt5, self._builtins = conn, mt5, builtins
        return mt5

    def remote_dict(self, values: dict[str, Any]) -> Any:
        """A dict built in the Wine Python (values must be plain: str, int, float)."""
        return self._builtins.dict(**values)

    def remote_tuple(self, proxy: Any) -> Any:
        """`tuple(proxy)` evaluated in the Wine Python: a tuple of plain values comes back by value."""
        return self._builtins.tuple(proxy)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - closing a dead connection is fine
                pass
