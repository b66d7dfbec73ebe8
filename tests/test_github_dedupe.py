"""Delivery de-duplication (bot/dedupe.py): two app instances sharing one real redis-server answer
a delivery once; with Redis gone the surface fails open and still does not comment twice; the
in-process store expires and stays bounded."""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis

from bot.app import create_app
from bot.dedupe import DEFAULT_TTL_S, MemoryDedupe, RedisDedupe
from tests.conftest import free_port
from tests.fakes.github import FakeGitHub, comment_event, deliver
from tests.test_github_webhook import github_settings, posted, settle


async def test_two_replicas_on_one_redis_post_a_delivery_once(redis_url, aiohttp_client,
                                                              aiohttp_server):
    github = FakeGitHub()
    github.base_url = str((await aiohttp_server(github.app())).make_url("/"))
    settings = github_settings(github, REDIS_URL=redis_url)
    one = await aiohttp_client(create_app(settings))
    two = await aiohttp_client(create_app(settings))
    payload = comment_event("/fits llama-2-7b q4 gpu=4090")
    first, second = await asyncio.gather(
        deliver(one, "issue_comment", payload, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        deliver(two, "issue_comment", payload, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958"))
    answers = sorted([(first.status, (await first.json())["status"]),
                      (second.status, (await second.json())["status"])])
    assert answers == [(200, "duplicate"), (202, "queued")]
    await settle(one)
    await settle(two)
    # a later redelivery to either replica is a duplicate too
    late = await deliver(two, "issue_comment", payload,
                         delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert (await late.json())["status"] == "duplicate"
    await settle(two)
    assert len(posted(github)) == 1 and github.calls("PATCH") == []


async def test_redis_claims_expire_and_can_be_released(redis_url):
    client = Redis.from_url(redis_url)
    try:
        store = RedisDedupe(client)
        assert await store.claim("github:delivery:a")
        assert not await store.claim("github:delivery:a")
        assert 0 < await client.ttl("fits:dedupe:github:delivery:a") <= DEFAULT_TTL_S
        await store.release("github:delivery:a")
        assert await store.claim("github:delivery:a")
        short = RedisDedupe(client, ttl_s=1, prefix="short:")
        assert await short.claim("b")
        assert await client.ttl("short:b") == 1  # Redis drops it after a second
    finally:
        await client.aclose()


async def test_with_redis_down_deliveries_are_answered_but_not_twice(aiohttp_client,
                                                                     aiohttp_server, caplog):
    github = FakeGitHub()
    github.base_url = str((await aiohttp_server(github.app())).make_url("/"))
    dead = f"redis://127.0.0.1:{free_port()}/0"
    client = await aiohttp_client(create_app(github_settings(github, REDIS_URL=dead)))
    payload = comment_event("/fits llama-2-7b q4 gpu=4090")
    with caplog.at_level(logging.WARNING, logger="fits.dedupe"):
        for _ in range(2):
            resp = await deliver(client, "issue_comment", payload, delivery="same")
            assert resp.status == 202  # fails open: handled rather than lost
            await settle(client)
    assert any("redis dedupe claim failed" in r.getMessage() for r in caplog.records)
    # the second run found the first reply by its marker: nothing new, nothing changed
    assert len(posted(github)) == 1 and github.calls("PATCH") == []


async def test_memory_claims_expire_and_stay_bounded():
    now = [0.0]
    store = MemoryDedupe(ttl_s=10, max_keys=3, clock=lambda: now[0])
    assert await store.claim("a") and not await store.claim("a")
    now[0] = 10.5
    assert await store.claim("a")  # expired
    for key in ("b", "c", "d"):
        assert await store.claim(key)
    assert len(store) == 3  # "a", the oldest, made room
    assert await store.claim("a")
    await store.release("d")
    assert await store.claim("d")
