"""Delivery de-duplication (bot/dedupe.py, bot/redis_store.py): two app instances sharing one real
redis-server answer a delivery once; with Redis gone each replica claims in its own process, and
two replicas given the same delivery at once still leave one reply; the in-process store expires
and stays bounded."""

from __future__ import annotations

import asyncio
import logging

from adapters.github.reply import read_marker
from bot.app import create_app
from bot.dedupe import DEFAULT_TTL_S, MemoryDedupe
from bot.redis_store import RedisDedupe, RedisLink, connect
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
    link = RedisLink(connect(redis_url))
    client = link.client
    try:
        store = RedisDedupe(link, DEFAULT_TTL_S)
        assert await store.claim("github:delivery:a")
        assert not await store.claim("github:delivery:a")
        assert 0 < await client.ttl("fits:dedupe:github:delivery:a") <= DEFAULT_TTL_S
        await store.release("github:delivery:a")
        assert await store.claim("github:delivery:a")
        short = RedisDedupe(link, ttl_s=1, prefix="short:")
        assert await short.claim("b")
        assert await client.ttl("short:b") == 1  # Redis drops it after a second
        # another replica (its own process memory) is refused by Redis
        other = RedisDedupe(RedisLink(connect(redis_url)), DEFAULT_TTL_S)
        assert not await other.claim("github:delivery:a")
        await other.link.close()
    finally:
        await link.close()


async def test_with_redis_down_deliveries_are_answered_but_not_twice(aiohttp_client,
                                                                     aiohttp_server, caplog):
    github = FakeGitHub()
    github.base_url = str((await aiohttp_server(github.app())).make_url("/"))
    dead = f"redis://127.0.0.1:{free_port()}/0"
    client = await aiohttp_client(create_app(github_settings(github, REDIS_URL=dead)))
    payload = comment_event("/fits llama-2-7b q4 gpu=4090")
    with caplog.at_level(logging.WARNING, logger="fits.redis"):
        first = await deliver(client, "issue_comment", payload, delivery="same")
        assert first.status == 202  # Redis is down: claimed in this process
        await settle(client)
        again = await deliver(client, "issue_comment", payload, delivery="same")
        assert (await again.json())["status"] == "duplicate"  # ... and remembered there
    assert any("redis is down" in r.getMessage() for r in caplog.records)
    assert len(posted(github)) == 1 and github.calls("PATCH") == []


async def test_two_replicas_with_redis_down_leave_one_reply_per_delivery(aiohttp_client,
                                                                          aiohttp_server):
    """50 deliveries, each sent to both replicas at once, Redis unreachable: every delivery is
    answered, and each question ends with exactly one reply (was: 82 comments for 50)."""
    github = FakeGitHub()
    github.base_url = str((await aiohttp_server(github.app())).make_url("/"))
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = github_settings(github, REDIS_URL=dead)
    one = await aiohttp_client(create_app(settings))
    two = await aiohttp_client(create_app(settings))
    for i in range(50):
        payload = comment_event(f"/fits llama-2-7b q{4 + i % 2} gpu=4090", comment_id=1000 + i)
        answers = await asyncio.gather(
            deliver(one, "issue_comment", payload, delivery=f"d-{i}"),
            deliver(two, "issue_comment", payload, delivery=f"d-{i}"))
        assert all(a.status == 202 for a in answers)
    await settle(one)
    await settle(two)
    from tests.fakes.github import NUMBER, OWNER, REPO

    replies = [read_marker(c["body"]) for c in github.thread(OWNER, REPO, NUMBER)]
    keys = [r[0] for r in replies if r]
    assert len(keys) == 50 and len(set(keys)) == 50


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
