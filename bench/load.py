"""Load on the service: start bot.app on a loopback port in this process and fire N requests at
concurrency C at /api/v1/fits?q=..., then print p50/p99 latency, throughput and the process's
peak RSS before and after. Offline (HF_HUB_OFFLINE): nothing leaves the host.

    python -m bench.load [-n 2000] [-c 50] [--q "meta-llama/Llama-2-7b q4 ctx=4096 gpu=24GB"]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import statistics
import sys
import time

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from bot.app import create_app
from bot.settings import Settings

QUERIES = ("meta-llama/Llama-2-7b q4 ctx=4096 gpu=24GB", "llama3-8b awq engine=vllm gpu=4090",
           "Qwen/Qwen3-8B q8 ctx=32k gpu=3090", "7b mode=train train=qlora gpu=24GB")


def max_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run(total: int, concurrency: int, queries: tuple[str, ...], time_limit_s: float) -> int:
    settings = Settings(HF_HUB_OFFLINE=True, _env_file=None)
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    rss_before = max_rss_mib()
    url = f"http://127.0.0.1:{port}/api/v1/fits"
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    next_index = 0
    deadline = time.monotonic() + time_limit_s

    async def worker(session: ClientSession) -> None:
        nonlocal next_index
        while next_index < total and time.monotonic() < deadline:
            i = next_index
            next_index += 1
            start = time.perf_counter()
            async with session.get(url, params={"q": queries[i % len(queries)]}) as resp:
                await resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
            latencies.append(time.perf_counter() - start)

    connector = TCPConnector(limit=concurrency)
    async with ClientSession(connector=connector, timeout=ClientTimeout(total=30)) as session:
        await session.get(url, params={"q": queries[0]})  # warm the connection pool's first socket
        began = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        wall = time.perf_counter() - began
    await runner.cleanup()
    rss_after = max_rss_mib()
    latencies.sort()
    done = len(latencies)
    p99 = latencies[min(done - 1, int(done * 0.99))] if done else float("nan")
    print(f"requests   {done} of {total} at concurrency {concurrency}"
          f"{' (time limit reached)' if done < total else ''}; statuses {statuses}")
    print(f"latency    p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
          f"max {latencies[-1] * 1000:.1f} ms")
    print(f"throughput {done / wall:.0f} requests/s over {wall:.2f} s")
    print(f"max RSS    {rss_before:.0f} MiB before the load, {rss_after:.0f} MiB after")
    return 0 if statuses.keys() == {200} else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", "--requests", type=int, default=2000)
    parser.add_argument("-c", "--concurrency", type=int, default=50)
    parser.add_argument("--q", action="append", help="command(s) to ask, in turn")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds at most")
    args = parser.parse_args(argv)
    total = max(1, min(args.requests, 1_000_000))
    concurrency = max(1, min(args.concurrency, 1000))
    return asyncio.run(run(total, concurrency, tuple(args.q or QUERIES), args.time_limit))


if __name__ == "__main__":
    sys.exit(main())
