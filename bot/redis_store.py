"""Shared state for several replicas on Redis: the Hub cache and the rate limits.

Both degrade rather than fail: if Redis is unreachable, the cache misses (answers still come, just
uncached) and the limiter lets requests through, each with a logged warning.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.ratelimit import IDLE_SECONDS, RateLimiter
from core.hub_cache import ConfigCache

log = logging.getLogger("fits.redis")

# An atomic token bucket: refill by elapsed time, take one token if there is one, and return
# the seconds until the next token otherwise. KEYS[1] bucket; ARGV rate/s, burst, now, idle ttl.
_BUCKET = """
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return tostring(wait)
"""


class RedisConfigCache(ConfigCache):
    """Hub lookups shared by every replica; single flight stays per process."""

    def __init__(self, client: Redis, prefix: str = "fits:hub:") -> None:
        super().__init__()
        self.client = client
        self.prefix = prefix

    async def get(self, key: str) -> Any | None:
        try:
            raw = await self.client.get(self.prefix + key)
        except RedisError as exc:
            log.warning("redis cache get failed", extra={"fields": {"error": type(exc).__name__}})
            return None
        return json.loads(raw) if raw else None

    async def set(self, key: str, value: Any, ttl_s: float) -> None:
        try:
            await self.client.set(self.prefix + key, json.dumps(value),
                                  px=max(1, int(ttl_s * 1000)))
        except RedisError as exc:
            log.warning("redis cache set failed", extra={"fields": {"error": type(exc).__name__}})


class RedisRateLimiter(RateLimiter):
    """The same token bucket as MemoryRateLimiter, kept in Redis so replicas share it."""

    def __init__(self, client: Redis, per_minute: float, burst: int,
                 prefix: str = "fits:rl:") -> None:
        self.client = client
        self.rate = per_minute / 60.0
        self.burst = burst
        self.prefix = prefix
        self.script = client.register_script(_BUCKET)

    async def hit(self, key: str) -> float | None:
        try:
            wait = float(await self.script(keys=[self.prefix + key],
                                           args=[self.rate, self.burst, time.time(), IDLE_SECONDS]))
        except RedisError as exc:
            log.warning("redis rate limit failed; letting the request through",
                        extra={"fields": {"error": type(exc).__name__}})
            return None
        return wait if wait > 0 else None
