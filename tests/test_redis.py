"""Shared state on a real redis-server (`bash scripts/test.sh` installs it): the Hub cache and rate limits
across two app instances, and what happens when Redis is gone, hangs or comes back."""

from __future__ import annotations

import asyncio
import time

from bot.app import ANSWERER, REDIS, create_app
from bot.redis_store import RedisConfigCache, RedisLink, RedisRateLimiter, connect
from core.parser import parse_command
from tests.conftest import free_port
from tests.test_service import make_settings

QUERY = {"q": "meta-llama/Llama-2-7b q8 gpu=24GB engine=hf"}
HANG_S = 60  # a batch that hangs fails here rather than forever


async def test_the_hub_cache_is_shared_between_replicas(redis_url) -> None:
    one, two = RedisLink(connect(redis_url)), RedisLink(connect(redis_url))
    try:
        await RedisConfigCache(one).set("model:org/x", {"config": {"hidden_size": 8}}, 60)
        assert await RedisConfigCache(two).get("model:org/x") == {"config": {"hidden_size": 8}}
        await RedisConfigCache(one).set("short", [1], 0.05)
        time.sleep(0.1)
        assert await RedisConfigCache(two).get("short") is None  # expired
    finally:
        await one.close()
        await two.close()


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


async def test_without_redis_answers_still_come_and_limits_hold_per_process() -> None:
    link = RedisLink(connect(f"redis://127.0.0.1:{free_port()}/0"), cooldown_s=60)
    try:
        assert await RedisConfigCache(link).get("anything") is None
        await RedisConfigCache(link).set("anything", 1, 10)  # logged, not raised
        assert not link.up and link.state()["state"] == "down"
        limiter = RedisRateLimiter(link, 60, 2)
        assert await limiter.hit("caller") is None
        assert await limiter.hit("caller") is None
        assert await limiter.hit("caller") is not None  # this process's bucket still limits
        assert link.failures == 1  # the breaker was open: nothing else touched the dead Redis
    finally:
        await link.close()


async def _load(client, n: int = 200, concurrency: int = 20) -> list[int]:
    slots = asyncio.Semaphore(concurrency)

    async def one() -> int:
        async with slots:
            resp = await client.get("/api/v1/fits", params=QUERY)
            await resp.read()
            return resp.status

    return await asyncio.wait_for(asyncio.gather(*(one() for _ in range(n))), HANG_S)


async def test_a_hung_redis_costs_one_timeout_not_one_per_request(redis_server, aiohttp_client):
    """SIGSTOP: Redis keeps its connections and answers nothing. Every request is still
    answered; only the calls in flight when it hung wait for the timeout, then the breaker keeps
    the rest away; readiness says "degraded" with the reason; after SIGCONT Redis is used again."""
    settings = make_settings(REDIS_URL=redis_server.url, FITS_REDIS_TIMEOUT_S=0.2,
                             FITS_REDIS_COOLDOWN_S=0.5)
    client = await aiohttp_client(create_app(settings))
    link = client.app[REDIS]
    assert await _load(client, 20) == [200] * 20 and link.up
    redis_server.pause()
    try:
        began = time.monotonic()
        assert await _load(client) == [200] * 200
        probes = (time.monotonic() - began) / 0.5 + 1  # one probe a cooldown, at most
        # at most the calls in flight when it hung, and the probes: not one per request
        assert 1 <= link.failures <= 20 + probes
        ready = await (await client.get("/readyz")).json()
        assert ready["status"] == "degraded" and ready["redis"]["state"] == "down"
        assert ready["redis"]["error"] == "TimeoutError"
        metrics = await (await client.get("/metrics")).text()
        assert "fits_redis_up 0.0" in metrics
    finally:
        redis_server.resume()
    await asyncio.sleep(0.6)  # past the cooldown: the next call probes
    assert await _load(client, 20) == [200] * 20
    assert link.up
    assert (await (await client.get("/readyz")).json())["status"] == "ready"


async def test_a_killed_redis_under_load_drops_nothing(redis_server, aiohttp_client):
    settings = make_settings(REDIS_URL=redis_server.url, FITS_REDIS_COOLDOWN_S=0.5)
    client = await aiohttp_client(create_app(settings))

    async def kill_soon() -> None:
        await asyncio.sleep(0.05)
        redis_server.stop()

    statuses, _ = await asyncio.gather(_load(client, 300), kill_soon())
    assert statuses == [200] * 300
    assert not client.app[REDIS].up


async def _cache_metric(client, result: str) -> float:
    text = await (await client.get("/metrics")).text()
    line = f'fits_report_cache_lookups_total{{result="{result}"}} '
    return next((float(x.split()[-1]) for x in text.splitlines() if x.startswith(line)), 0.0)


async def test_a_report_one_replica_worked_out_is_served_by_the_other(redis_url, aiohttp_client):
    settings = make_settings(REDIS_URL=redis_url)
    first = await aiohttp_client(create_app(settings))
    second = await aiohttp_client(create_app(settings))
    q = {"q": "moonshotai/Kimi-K2-Instruct Q2_K gpu=4090 ram=512GB"}
    worked_out = await (await first.get("/api/v1/fits", params=q)).json()
    shared = await (await second.get("/api/v1/fits", params=q)).json()
    assert shared == worked_out and worked_out["model"]["id"] == "moonshotai/Kimi-K2-Instruct"
    assert await _cache_metric(first, "miss") == 1 and await _cache_metric(second, "shared_hit") == 1
    # The surfaces render the typed report, not the JSON: the web page agrees word for word.
    pages = [await (await app.get("/", params=q)).text() for app in (first, second)]
    assert pages[0] == pages[1] and "Kimi-K2-Instruct" in pages[0]


async def test_a_forged_or_broken_stored_report_is_a_miss_not_an_answer(redis_url, aiohttp_client):
    settings = make_settings(REDIS_URL=redis_url)
    client = await aiohttp_client(create_app(settings))
    store = client.app[ANSWERER].shared
    q = "meta-llama/Llama-2-7b q4 gpu=24GB"
    key = repr(parse_command(q))
    honest = await (await client.get("/api/v1/fits", params={"q": q})).json()
    raw = await store.link.client.get(store._key(key))
    forged = raw.replace(b'"$":"ReportDetails"', b'"$":"Popen"')
    for stored in (forged, b"\x80\x04pickle", raw[: len(raw) // 2]):
        await store.link.client.set(store._key(key), stored)
        fresh = await aiohttp_client(create_app(settings))
        resp = await fresh.get("/api/v1/fits", params={"q": q})
        assert resp.status == 200 and await resp.json() == honest
        assert await _cache_metric(fresh, "miss") == 1
        assert await _cache_metric(fresh, "shared_hit") == 0
