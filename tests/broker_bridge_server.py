"""An rpyc classic server serving the fake MetaTrader5 module: the Wine side of pymt5linux, in a test.

Run as a subprocess by tests/test_broker_mt5_bridge.py; prints its port, then serves until killed.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from broker_contract_fixtures import SYM, scripted_bars  # noqa: E402
from fakes import fake_mt5  # noqa: E402
from rpyc.core.service import ClassicService  # noqa: E402
from rpyc.utils.server import ThreadedServer  # noqa: E402

sys.modules["MetaTrader5"] = fake_mt5  # `conn.modules.MetaTrader5` resolves to the fake, as under Wine


def main() -> None:
    fake_mt5.fake_reset()
    fake_mt5.fake_add_symbol(SYM, {fake_mt5.TIMEFRAME_M5: scripted_bars()}, stops_level=20, contract_size=100)
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0  # a fixed port: a restarted Wine side
    server = ThreadedServer(ClassicService, hostname="127.0.0.1", port=port, reuse_addr=True)
    print(server.port, flush=True)
    server.start()


if __name__ == "__main__":
    main()
