"""Shared state on a real redis-server (`.ci/run` installs it): the Hub cache and rate limits
across two app instances, and what happens when Redis is gone."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
from redis.asyncio import Redis

from bot.app import create_app
from bot.redis_store import RedisConfigCache, RedisRateLimiter
from tests.test_service import make_settings

QUERY = {"q": "meta-llama/Llama-2-7b q4 gpu=24GB"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def redis_url():
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (.ci/run installs it)"
    port = _free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


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
    dead = Redis.from_url(f"redis://127.0.0.1:{_free_port()}/0", socket_connect_timeout=0.2)
    try:
        assert await RedisConfigCache(dead).get("anything") is None
        await RedisConfigCache(dead).set("anything", 1, 10)  # logged, not raised
        assert await RedisRateLimiter(dead, 60, 1).hit("caller") is None  # fails open
    finally:
        await dead.aclose()
