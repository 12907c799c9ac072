"""/scalp end to end through the real python-telegram-bot stack to a loopback Bot API stand-in.

Measures what a trader waits for: from the moment Telegram has the `/scalp SYMBOL` update until the
bot has posted both the chart (sendPhoto) and the card with its keyboard (sendMessage). The core is
the real one: TradingService on PaperBroker replaying the real market files, real analysis, real
proposals in SQLite, real PNG chart. 200 requests round-robin over three symbols, one at a time, the
replay clock moving 5 minutes between requests so every analysis sees new bars.

Run:  .venv/bin/python bench/scalp_reply.py [--n 200]
Targets: p50 <= 300 ms, p99 <= 800 ms.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fakes.bot_api_server import BotApiServer  # noqa: E402

from bot.runner import build_core, make_router  # noqa: E402
from bot.telegram_bot import TelegramFrontEnd  # noqa: E402
from core.authz import Authorizer  # noqa: E402
from core.clock import FixedClock  # noqa: E402
from core.config import DEFAULT_CONFIG_PATH, deep_merge, load_config  # noqa: E402

TOKEN = "123456:BENCH-token-not-real-cccccccccccccccccccccccc"
USER = 4242
SYMBOLS = ["XAUUSDc", "BTCUSDc", "EURUSDc"]
# A replay instant where all three files have bars: XAUUSD and BTCUSD at M5; the EURUSD M5 file starts in
# 2026, so EURUSDc is analysed on its H1 file here (a per-symbol override, exactly as a user would set it).
START = datetime(2025, 5, 20, 6, 45, tzinfo=UTC).timestamp()  # the first timed XAUUSDc request (07:15) is a real setup
OVERRIDES = {"symbol_overrides": {"EURUSDc": {"range_detection": {"timeframe": "H1", "nested_timeframes": ["H1"],
                                                                  "session_range": "asian"}}}}


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))]


async def main(n: int) -> None:
    import json

    logging.basicConfig(level=logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="scalp_bench_"))
    raw = deep_merge(json.loads(DEFAULT_CONFIG_PATH.read_text()), OVERRIDES)
    (tmp / "config.json").write_text(json.dumps(raw))
    cfg = load_config(tmp / "config.json")
    clock = FixedClock(START)
    service = build_core(cfg, None, clock=clock, data_dir=tmp, authorizer=Authorizer([USER], []))
    await service.start()
    api = await BotApiServer(token=TOKEN).start()
    router = make_router(service, cfg, chart_dir=tmp / "charts")
    fe = TelegramFrontEnd(router, TOKEN, base_url=api.base_url, base_file_url=api.base_file_url, poll_timeout=5)
    await fe.start()
    lat: dict[str, list[float]] = {s: [] for s in SYMBOLS}
    verdicts: dict[str, int] = {}
    photos = 0
    try:
        for i in range(n + 6):  # the first 6 are warm-up (imports, caches, first PNG)
            sym = SYMBOLS[i % 3]
            before = len(api.calls)
            t0 = time.perf_counter()
            api.push_text(f"/scalp {sym.lower()}", USER)
            card = await api.wait_for(lambda a, b=before: [c for c in a.calls[b:] if c.method == "sendMessage"],
                                      timeout=30)
            dt = (time.perf_counter() - t0) * 1000
            sent = [c.method for c in api.calls[before:]]
            if i >= 6:
                lat[sym].append(dt)
                photos += "sendPhoto" in sent
                first = card[0].params["text"].splitlines()
                key = first[1].split(" ·")[0] if len(first) > 1 else first[0][:30]
                verdicts[key] = verdicts.get(key, 0) + 1
            clock.advance(300)
    finally:
        await fe.stop()
        await service.stop()
        await api.stop()
    allv = [x for v in lat.values() for x in v]
    print(f"/scalp via PTB -> loopback Bot API, {len(allv)} requests over {', '.join(SYMBOLS)}; "
          f"charts sent: {photos}/{len(allv)}")
    print(f"replay {datetime.fromtimestamp(START, UTC):%Y-%m-%d %H:%M} UTC onwards, 5 min per request")
    print(f"overall   p50 {pct(allv, 50):6.1f} ms   p99 {pct(allv, 99):6.1f} ms   "
          f"mean {statistics.mean(allv):6.1f} ms   max {max(allv):6.1f} ms")
    for s, v in lat.items():
        print(f"{s:9} p50 {pct(v, 50):6.1f} ms   p99 {pct(v, 99):6.1f} ms   (n={len(v)})")
    print("verdicts:", ", ".join(f"{k}: {v}" for k, v in sorted(verdicts.items())))
    print("targets: p50 <= 300 ms, p99 <= 800 ms ->",
          "MET" if pct(allv, 50) <= 300 and pct(allv, 99) <= 800 else "NOT MET")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    asyncio.run(main(ap.parse_args().n))
