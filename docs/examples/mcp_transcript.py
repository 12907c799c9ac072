"""A real MCP session, printed as a transcript: analysis -> proposal -> card in chat -> tap -> fill.

Run: .venv/bin/python docs/examples/mcp_transcript.py

It starts `moneybot run` in-process (paper broker replaying the bundled XAUUSDc data at a fixed moment,
console chat, config mcp.enabled, store in a temporary folder), connects the official MCP client over
streamable HTTP with a trader token, and plays the trader on the console: the Approve tap is typing its
number, exactly as a trader would. The README's transcript is this script's output.
"""
from __future__ import annotations

import asyncio
import io
import json
import queue
import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx2  # noqa: E402
from mcp import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

AT = 1735910400 + 300  # 2025-01-03 13:25 UTC: the real XAUUSDc analysis passes here
TOKEN = "demo-" + "x" * 40


class Stdin(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.q: queue.Queue[str] = queue.Queue()

    def readline(self, *a) -> str:
        return self.q.get()


def show(call: str, result) -> dict:
    data = result.structured_content
    print(f">>> {call}")
    if result.is_error:
        print(f"<<< error: {result.content[0].text}")
        return {}
    return data


async def main() -> None:
    from bot.runner import Runner
    from core.app import build_for_run
    from core.config.loading import load_config
    from core.config.model import deep_merge
    from core.config.paths import DEFAULT_CONFIG_PATH
    from core.config.settings import Secrets
    from core.domain.clock import FixedClock

    tmp = Path(tempfile.mkdtemp())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    raw = deep_merge(json.loads(DEFAULT_CONFIG_PATH.read_text()), {"mcp": {"enabled": True, "port": port}})
    (tmp / "config.json").write_text(json.dumps(raw))
    cfg = load_config(tmp / "config.json")
    secrets = Secrets(_env_file=None, mcp_token=TOKEN)
    service = build_for_run(cfg, secrets, clock=FixedClock(AT), data_dir=tmp)
    stdin, out = Stdin(), io.StringIO()
    runner = Runner(service, cfg, secrets, stdin=stdin, stdout=out, chart_dir=tmp / "charts")
    task = asyncio.create_task(runner.run())
    while runner.mcp is None or runner.mcp.http is None or not runner.mcp.http.started:
        await asyncio.sleep(0.05)
    url = f"http://127.0.0.1:{port}/mcp"
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as http, \
            streamable_http_client(url, http_client=http) as (r, w), ClientSession(r, w) as s:
        await s.initialize()
        a = show('analyse_range_scalp_opportunity(symbol="XAUUSDc")',
                 await s.call_tool("analyse_range_scalp_opportunity", {"symbol": "XAUUSDc"}))
        rng, top = a["range"], a["top_strategy"]
        print(f"<<< verdict {a['verdict']}, confidence {a['confidence']:.0f}, {rng['range_type']} range "
              f"{rng['range_low']:.2f}-{rng['range_high']:.2f}; checks: "
              + ", ".join(f"{f['name']} {'pass' if f['passed'] else 'FAIL'}" for f in a["filters"]))
        print(f"<<< top strategy {top['strategy']} {top['direction']} entry {top['entry']:.2f} "
              f"SL {top['stop_loss']:.2f} TP {top['take_profit']:.2f} R:R {top['rr']:.2f} score {top['score']:.0f}")
        p = show(f'propose_trade(symbol="XAUUSDc", strategy="{top["strategy"]}")',
                 await s.call_tool("propose_trade", {"symbol": "XAUUSDc", "strategy": top["strategy"]}))
        print(f"<<< proposal {p['proposal_id']}: {p['status']}, {p['message']}")
        await asyncio.sleep(0.5)
        print("--- console chat (the traders' chat) ---")
        card = out.getvalue()
        print("\n".join(line for line in card.splitlines() if line.strip() and not line.startswith("chart:")))
        print("--- the trader types 1 (Approve) ---")
        stdin.q.put("1\n")
        for _ in range(100):
            if service.broker.positions():
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        print("\n".join(out.getvalue()[len(card):].strip().splitlines()))
        g = show(f'get_proposal(proposal_id="{p["proposal_id"]}")',
                 await s.call_tool("get_proposal", {"proposal_id": p["proposal_id"]}))
        print(f"<<< status {g['status']}, ticket {g['ticket']}, fill {g['fill_price']}")
    runner.stop_event.set()
    await asyncio.wait_for(task, 30)


if __name__ == "__main__":
    asyncio.run(main())
