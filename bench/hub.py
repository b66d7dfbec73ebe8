"""Hub resolve latency, cached against uncached, and cached throughput, against the local fake
Hub (tests/fakes/hub.py) through the real huggingface_hub client.

    python -m bench.hub

- uncached: a new cache each time: model_info(expand=...) and a streamed GET of config.json
  over loopback, plus building the spec (the floor of a real Hub round trip, which adds the
  network's latency twice);
- cached: the same resolve answered from the in-process cache (MemoryConfigCache);
- throughput: cached resolves per second, one after another and 1,000 at a time (asyncio.gather);
- single flight: upstream requests made by 100 concurrent resolves of one uncached repo.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="fits-bench-hf-"))
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.pop("HF_HUB_OFFLINE", None)

from aiohttp.test_utils import TestServer  # noqa: E402

from adapters.hub.cache import MemoryConfigCache  # noqa: E402
from adapters.hub.resolve import resolve_hub  # noqa: E402
from adapters.hub.settings import HubSettings  # noqa: E402
from tests.fakes.hub import FakeHub, FakeRepo  # noqa: E402

REPO = "bench/Nimbus-8B"
CONFIG = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32,
          "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
          "vocab_size": 128256, "max_position_embeddings": 131072, "torch_dtype": "bfloat16"}


async def median_s(make: object, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        await make()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def main() -> None:
    fake = FakeHub()
    fake.add(FakeRepo(REPO, config=CONFIG, params={"BF16": 8_030_261_248}))
    server = TestServer(fake.app())
    await server.start_server()
    settings = HubSettings(endpoint=str(server.make_url("")).rstrip("/"))
    try:
        await resolve_hub(REPO, settings, MemoryConfigCache())  # imports, connection pool
        uncached = await median_s(lambda: resolve_hub(REPO, settings, MemoryConfigCache()), 50)
        cache = MemoryConfigCache()
        await resolve_hub(REPO, settings, cache)
        cached = await median_s(lambda: resolve_hub(REPO, settings, cache), 2000)

        n = 5_000
        start = time.perf_counter()
        for _ in range(n):
            await resolve_hub(REPO, settings, cache)
        sequential = n / (time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(10):
            await asyncio.gather(*(resolve_hub(REPO, settings, cache) for _ in range(1000)))
        concurrent = 10_000 / (time.perf_counter() - start)

        before = fake.total
        fake.slow(0.05, match="/api/models/", times=1)
        flight = MemoryConfigCache()
        await asyncio.gather(*(resolve_hub(REPO, settings, flight) for _ in range(100)))
        upstream = fake.total - before
    finally:
        fake.release()
        await server.close()

    print(f"uncached resolve (fake Hub on loopback)   {uncached * 1e3:8.2f} ms  (median of 50)")
    print(f"cached resolve                            {cached * 1e6:8.1f} us  (median of 2,000)")
    print(f"uncached / cached                         {uncached / cached:8.0f} x")
    print(f"cached throughput, one at a time          {sequential:8,.0f} resolves/s")
    print(f"cached throughput, 1,000 at a time        {concurrent:8,.0f} resolves/s")
    print(f"100 concurrent uncached resolves          {upstream:8d} upstream requests "
          "(model_info + config.json)")


if __name__ == "__main__":
    asyncio.run(main())
