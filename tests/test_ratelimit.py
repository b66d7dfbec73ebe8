"""Rate limits on the running service, and the limiter itself."""

from __future__ import annotations

import asyncio

from bot.app import create_app
from bot.ratelimit import MemoryRateLimiter
from tests.test_service import make_settings

QUERY = {"q": "meta-llama/Llama-2-7b q4 gpu=24GB"}


async def test_a_caller_over_the_limit_gets_a_friendly_429_with_retry_after(aiohttp_client):
    app = create_app(make_settings(FITS_RATE_LIMIT_PER_MINUTE=6, FITS_RATE_LIMIT_BURST=3))
    client = await aiohttp_client(app)
    statuses = [(await client.get("/api/v1/fits", params=QUERY)).status for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = await client.get("/api/v1/fits", params=QUERY)
    assert limited.status == 429
    body = await limited.json()
    assert "faster than fits answers" in body["error"]
    assert body["hint"].startswith("Try again in")
    assert 1 <= int(limited.headers["Retry-After"]) <= 10
    metrics = await (await client.get("/metrics")).text()
    assert 'outcome="rate_limited"' in metrics
    assert (await client.get("/healthz")).status == 200  # probes are never limited


async def test_buckets_refill_and_callers_are_independent() -> None:
    limiter = MemoryRateLimiter(per_minute=6000, burst=2)  # 100 a second
    assert await limiter.hit("a") is None
    assert await limiter.hit("a") is None
    wait = await limiter.hit("a")
    assert wait is not None and 0 < wait <= 0.011
    assert await limiter.hit("b") is None  # another caller has its own bucket
    await asyncio.sleep(0.02)
    assert await limiter.hit("a") is None
