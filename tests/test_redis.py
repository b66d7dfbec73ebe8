"""Shared state on a real redis-server (`.ci/run` installs it): the Hub cache and rate limits
across two app instances, and what happens when Redis is gone."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from bot.app import create_app
from bot.redis_store import RedisConfigCache, RedisRateLimiter
from tests.conftest import free_port
from tests.test_service import make_settings

QUERY = {"q": "meta-llama/Llama-2-7b q4 gpu=24GB"}


async def test_the_hub_cache_is_shared_between_replicas(redis_url) -> None:
    one, two = Redis.from_url(redis_url), Redis.from_url(redis_url)
    try:
        await RedisConfigCache(one).set("model:org/x", {"config": {"hidden_size": 8}}, 60)
        assert await RedisConfigCache(two).get("model:org/x") == {"config": {"hidden_size": 8}}
        await RedisConfigCache(one).set("short", [1], 0.05)
        time.sleep(0.1)
        assert await RedisConfigCache(two).get("short") is None  # expired
    finally:
        await one.aclose()
        await two.aclose()


async def test_rate_limits_are_shared_between_two_app_instances(redis_url, aiohttp_client):
    settings = make_settings(REDIS_URL=redis_url, FITS_RATE_LIMIT_PER_MINUTE=6,
                             FITS_RATE_LIMIT_BURST=3)
    first = await aiohttp_client(create_app(settings))
    second = await aiohttp_client(create_app(settings))
    statuses = [(await first.get("/api/v1/fits", params=QUERY)).status for _ in range(2)]
    statuses.append((await second.get("/api/v1/fits", params=QUERY)).status)
    assert statuses == [200, 200, 200]
    limited = await second.get("/api/v1/fits", params=QUERY)
    assert limited.status == 429  # the burst of 3 was spent across both replicas
    assert int(limited.headers["Retry-After"]) >= 1


async def test_without_redis_answers_still_come() -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    try:
        assert await RedisConfigCache(dead).get("anything") is None
        await RedisConfigCache(dead).set("anything", 1, 10)  # logged, not raised
        assert await RedisRateLimiter(dead, 60, 1).hit("caller") is None  # fails open
    finally:
        await dead.aclose()
