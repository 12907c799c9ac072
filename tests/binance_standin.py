"""A local Binance (and Forex Factory calendar) stand-in on 127.0.0.1, serving recorded responses.

The trades are the recorded Binance BTCUSDT prints (nautilus_trader) and freqtrade's ETH/USDT prints
from the shared market data, answered in Binance's own `/api/v3/trades` layout; the book top is built
from the same prints (sizes of the last trades stacked around the last price: the recorded data has
no book). ccxt reaches it through its own URL override (`urls['api']['public']`). `mode` switches the
failure each test needs: timeout, 429, 418, maintenance (503 with Binance's maintenance body),
malformed, skew (prints stamped in the future).
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np

from core.config.paths import market_data_dir
from core.data.trades import load_trades

BTC_FILE = "nautechsystems__nautilus_trader/tests/test_data/binance/btcusdt-trades.parquet"
ETH_FILE = "freqtrade__freqtrade/tests/testdata/orderflow/public_trades_list.csv"
CALENDAR_FILE = "cemerttu__ian_bot/forex_calendar_cache.json"


def recorded(name: str) -> np.ndarray:
    return load_trades(Path(market_data_dir()) / name)


def _market(symbol: str, base: str) -> dict:
    return {"symbol": symbol, "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8, "quoteAsset": "USDT",
            "quotePrecision": 8, "quoteAssetPrecision": 8, "orderTypes": ["LIMIT", "MARKET"],
            "isSpotTradingAllowed": True, "isMarginTradingAllowed": False, "permissions": ["SPOT"],
            "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000", "tickSize": "0.01"},
                        {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000", "stepSize": "0.00001"}]}


class Standin:
    def __init__(self, calendar: bytes | None = None):
        self.trades = {"BTCUSDT": recorded(BTC_FILE), "ETHUSDT": recorded(ETH_FILE)}
        self.mode = "ok"
        self.skew_seconds = 120.0
        self.delay = 0.0
        self.server_now: float | None = None  # /time answers this when set
        self.end_at: float | None = None  # move the recorded prints to end just before this time (a live run)
        self.calendar = calendar or (Path(market_data_dir()) / CALENDAR_FILE).read_bytes()
        self.requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Standin:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def trades_json(self, symbol: str, limit: int) -> list[dict]:
        t = self.trades[symbol][-limit:]
        shift = self.skew_seconds if self.mode == "skew" else 0.0
        if self.end_at is not None:
            shift += self.end_at - 2.0 - float(self.trades[symbol]["time"][-1])
        return [{"id": i, "price": f"{p:.2f}", "qty": f"{q:.8f}", "quoteQty": f"{p * q:.8f}",
                 "time": int(round((tm + shift) * 1000)), "isBuyerMaker": bool(s < 0), "isBestMatch": True}
                for i, (tm, p, q, s) in enumerate(t.tolist(), start=len(self.trades[symbol]) - len(t))]

    def depth_json(self, symbol: str, limit: int) -> dict:
        t = self.trades[symbol]
        last = float(t["price"][-1])
        sizes = t["qty"][-2 * limit:]
        bids = [[f"{last - 0.01 * (i + 1):.2f}", f"{q:.8f}"] for i, q in enumerate(sizes[:limit])]
        asks = [[f"{last + 0.01 * (i + 1):.2f}", f"{q:.8f}"] for i, q in enumerate(sizes[limit:])]
        return {"lastUpdateId": 1, "bids": bids, "asks": asks}

    def _handler(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _send(self, code: int, body, ctype: str = "application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802 - http.server's name
                u = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(u.query).items()}
                owner.requests.append(u.path)
                if owner.delay:
                    time.sleep(owner.delay)
                mode = owner.mode
                if u.path.endswith("/calendar.json"):
                    if mode == "429":
                        return self._send(429, {"error": "slow down"})
                    if mode == "malformed":
                        return self._send(200, b"<html>not json</html>", "text/html")
                    return self._send(200, owner.calendar)
                if u.path.endswith("/time"):
                    # the recorded world's clock: just after the last BTC print (moved like the prints are)
                    t = float(owner.trades["BTCUSDT"]["time"][-1]) + 1.0
                    if owner.end_at is not None:
                        t = owner.end_at - 1.0
                    if owner.server_now is not None:
                        t = owner.server_now
                    t += {"skew": owner.skew_seconds, "skew_behind": -owner.skew_seconds}.get(mode, 0.0)
                    return self._send(200, {"serverTime": int(t * 1000)})
                if u.path.endswith("/exchangeInfo"):
                    return self._send(200, {"timezone": "UTC", "serverTime": int(time.time() * 1000), "rateLimits": [],
                                            "exchangeFilters": [],
                                            "symbols": [_market("BTCUSDT", "BTC"), _market("ETHUSDT", "ETH")]})
                if mode in ("429", "418"):
                    return self._send(int(mode), {"code": -1003, "msg": "Too many requests."})
                if mode == "maintenance":
                    return self._send(503, {"code": 1, "msg": "System is under maintenance."})
                if mode == "malformed" and u.path.endswith("/trades"):
                    return self._send(200, [{"id": 1, "qty": "nope", "time": "x"}])
                if u.path.endswith("/trades"):
                    return self._send(200, owner.trades_json(q["symbol"], int(q.get("limit", 500))))
                if u.path.endswith("/depth"):
                    return self._send(200, owner.depth_json(q["symbol"], int(q.get("limit", 10))))
                return self._send(404, {"code": -1, "msg": "not here"})

        return Handler
