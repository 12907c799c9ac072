"""Round trip of the MCP tool `analyse_range_scalp_opportunity`, minus the analysis itself.

Run: .venv/bin/python bench/mcp.py [CALLS] [HTTP_CLIENTS] [CALLS_PER_CLIENT]

The server is the real one (`bot.mcp_server.build_server`, standalone backend) in a child process; its
analyser returns an AnalysisResult computed once at start-up from the real XAUUSDc data, so every call
carries the real payload (range, checks, strategies: ~6 KB of JSON) through argument validation, the
output model, the SDK and the transport, but no analysis. The full call (analysis included) is timed
too, for scale (the same last bar every call, so the analysis's memos are warm: a cold analysis is
bench/analysis.py's figure). Budgets (issue #16): stdio p50 <= 20 ms, p99 <= 60 ms. HTTP: 20 concurrent clients, each
its own session and bearer token check, over streamable HTTP on 127.0.0.1.
"""
from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# this file is named like the SDK package: drop bench/ from the path so `import mcp` finds the SDK
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

SYMBOL = "XAUUSDc"
TOKEN = "bench-token-" + "b" * 32


def _backend(cached: bool):
    from bot.mcp_server.backend import StandaloneBackend, file_analyser
    from core.api import Store
    from core.config.loading import load_config

    cfg = load_config()
    real = file_analyser(cfg)
    result = asyncio.run(real(SYMBOL))

    async def canned(symbol: str):
        return result

    import tempfile

    store = Store(Path(tempfile.mkdtemp()) / "bench.sqlite")
    return StandaloneBackend(cfg, store, canned if cached else real)


def serve_stdio(cached: bool) -> None:
    from bot.mcp_server.server import build_server

    build_server(_backend(cached)).run("stdio")


def serve_http(port: int) -> None:
    import anyio

    from bot.mcp_server.http import HttpOptions, serve_http
    from bot.mcp_server.server import build_server

    opts = HttpOptions(port=port, tokens={TOKEN: "viewer"}, rate_per_minute=10**9)
    anyio.run(serve_http, build_server(_backend(True)), opts)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def report(name: str, ms: list[float], wall: float | None = None) -> None:
    extra = f", {len(ms) / wall:.0f} calls/s" if wall else ""
    print(f"{name:44s} n={len(ms):4d}  p50 {pct(ms, 50):6.2f} ms  p99 {pct(ms, 99):6.2f} ms  "
          f"mean {statistics.fmean(ms):6.2f} ms{extra}")


async def bench_stdio(calls: int, cached: bool) -> list[float]:
    from mcp import ClientSession, StdioServerParameters, stdio_client

    args = [str(Path(__file__).resolve()), "--serve-stdio", "cached" if cached else "real"]
    params = StdioServerParameters(command=sys.executable, args=args, cwd=str(ROOT))
    out = []
    async with stdio_client(params) as (r, w), ClientSession(r, w) as s:
        await s.initialize()
        await s.list_tools()
        for _ in range(5):  # warm-up
            await s.call_tool("analyse_range_scalp_opportunity", {"symbol": SYMBOL})
        for _ in range(calls):
            t0 = time.perf_counter()
            res = await s.call_tool("analyse_range_scalp_opportunity", {"symbol": SYMBOL})
            out.append((time.perf_counter() - t0) * 1000)
            assert not res.is_error and res.structured_content["symbol"] == SYMBOL
    return out


async def bench_http(clients: int, per_client: int) -> tuple[list[float], float]:
    import socket
    import subprocess

    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve-http", str(port)], cwd=ROOT)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        async with httpx2.AsyncClient() as probe:
            for _ in range(200):
                try:
                    await probe.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
                    break
                except httpx2.TransportError:
                    await asyncio.sleep(0.05)
        times: list[float] = []
        start = asyncio.Event()

        async def client() -> None:
            async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"},
                                          timeout=httpx2.Timeout(60.0)) as http, \
                    streamable_http_client(url, http_client=http) as (r, w), ClientSession(r, w) as s:
                await s.initialize()
                await s.call_tool("analyse_range_scalp_opportunity", {"symbol": SYMBOL})  # warm-up
                await start.wait()
                for _ in range(per_client):
                    t0 = time.perf_counter()
                    res = await s.call_tool("analyse_range_scalp_opportunity", {"symbol": SYMBOL})
                    times.append((time.perf_counter() - t0) * 1000)
                    assert not res.is_error

        tasks = [asyncio.create_task(client()) for _ in range(clients)]
        await asyncio.sleep(2.0)  # every session open and warm
        t0 = time.perf_counter()
        start.set()
        await asyncio.gather(*tasks)
        return times, time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--serve-stdio":
        return serve_stdio(sys.argv[2] == "cached")
    if len(sys.argv) > 2 and sys.argv[1] == "--serve-http":
        return serve_http(int(sys.argv[2]))
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    per_client = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    stdio = asyncio.run(bench_stdio(calls, cached=True))
    report("stdio, round trip minus analysis", stdio)
    report("stdio, full call, analysis memo warm (scale)", asyncio.run(bench_stdio(max(20, calls // 10), cached=False)))
    ms, wall = asyncio.run(bench_http(clients, per_client))
    report(f"HTTP, {clients} concurrent clients, minus analysis", ms, wall)
    ok = pct(stdio, 50) <= 20 and pct(stdio, 99) <= 60
    print(f"stdio budget (p50 <= 20 ms, p99 <= 60 ms): {'OK' if ok else 'OVER'}")


if __name__ == "__main__":
    main()
