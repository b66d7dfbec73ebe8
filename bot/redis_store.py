"""Shared state for several replicas on Redis: the Hub cache, rate limits and de-duplication.

One ``RedisLink`` per process holds the client and a circuit breaker. Every call has short
connect and read timeouts (FITS_REDIS_TIMEOUT_S, default 0.25 s) and no retries, so a hung Redis
(a paused process, a black-holed network) costs one request at most that long; after a failure
the link stays open ("down") for FITS_REDIS_COOLDOWN_S, during which calls do not touch Redis at
all, then one probe call decides whether it is back. While it is down each store falls back to
this process: the cache misses, the rate limits and the de-duplication claims are kept
in-process (bot/ratelimit.py, bot/dedupe.py), so answers keep coming at full speed and a replica
never answers one delivery twice. /readyz and the ``fits_redis_up`` gauge report the state, and
the log has one line when Redis goes down and one when it is back.

The client's defaults changed across redis-py releases (no socket timeout at all before 6, 5 s
with three retries since): everything this module relies on is passed explicitly.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from adapters.hub.cache import ConfigCache
from bot.dedupe import DedupeStore, MemoryDedupe
from bot.ratelimit import IDLE_SECONDS, MemoryRateLimiter, RateLimiter

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger("fits.redis")
T = TypeVar("T")

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


def connect(url: str, timeout_s: float = 0.25) -> Redis:
    """A client that gives up after ``timeout_s`` on connect and on every read, without retry."""
    return Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                          retry=Retry(NoBackoff(), 0), retry_on_timeout=False,
                          health_check_interval=0)


class RedisLink:
    """The client, and whether Redis is usable now (a circuit breaker)."""

    def __init__(self, client: Redis, cooldown_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.down_since: float | None = None
        self.last_error: str | None = None
        self._retry_at = 0.0
        self._probing = False
        self.failures = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisLink:
        assert settings.redis_url is not None
        return cls(connect(settings.redis_url.get_secret_value(), settings.redis_timeout_s),
                   settings.redis_cooldown_s)

    @property
    def up(self) -> bool:
        return self.down_since is None

    def state(self) -> dict[str, Any]:
        if self.up:
            return {"state": "up"}
        assert self.down_since is not None
        return {"state": "down", "error": self.last_error,
                "down_s": round(self.clock() - self.down_since, 1)}

    async def call(self, what: str, op: Callable[[Redis], Awaitable[T]],
                   fallback: Callable[[], T]) -> T:
        """``op(client)``, or ``fallback()`` when Redis is down or fails now."""
        if not self.up:
            if self._probing or self.clock() < self._retry_at:
                return fallback()
            self._probing = True  # one call finds out whether it is back; the rest fall back
        try:
            result = await op(self.client)
        except (RedisError, OSError) as exc:
            self._failed(what, exc)
            return fallback()
        finally:
            self._probing = False
        if not self.up:
            log.warning("redis is back", extra={"fields": {
                "down_s": round(self.clock() - (self.down_since or 0), 1)}})
            self.down_since = None
            self.last_error = None
        return result

    def _failed(self, what: str, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = type(exc).__name__
        self._retry_at = self.clock() + self.cooldown_s
        if self.up:
            self.down_since = self.clock()
            log.warning("redis is down; using this process's state until it is back",
                        extra={"fields": {"during": what, "error": self.last_error,
                                          "retry_in_s": self.cooldown_s}})

    async def close(self) -> None:
        await self.client.aclose()


class RedisConfigCache(ConfigCache):
    """Hub lookups shared by every replica; single flight stays per process."""

    def __init__(self, link: RedisLink, prefix: str = "fits:hub:") -> None:
        super().__init__()
        self.link = link
        self.prefix = prefix

    async def get(self, key: str) -> Any | None:
        raw = await self.link.call("cache get", lambda r: r.get(self.prefix + key),
                                   lambda: None)
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None  # not ours, or cut short: a miss

    async def set(self, key: str, value: Any, ttl_s: float) -> None:
        text = json.dumps(value)

        async def put(client: Redis) -> None:
            await client.set(self.prefix + key, text, px=max(1, int(ttl_s * 1000)))

        await self.link.call("cache set", put, lambda: None)


class RedisRateLimiter(RateLimiter):
    """The same token bucket as MemoryRateLimiter, kept in Redis so replicas share it; while
    Redis is down each replica limits on its own."""

    def __init__(self, link: RedisLink, per_minute: float, burst: int,
                 prefix: str = "fits:rl:") -> None:
        self.link = link
        self.rate = per_minute / 60.0
        self.burst = burst
        self.prefix = prefix
        self.script = link.client.register_script(_BUCKET)
        self.local = MemoryRateLimiter(per_minute, burst)

    async def hit(self, key: str) -> float | None:
        async def shared(client: Redis) -> float | bool | None:
            wait = float(await self.script(keys=[self.prefix + key],
                                           args=[self.rate, self.burst, time.time(),
                                                 IDLE_SECONDS]))
            return wait if wait > 0 else None

        wait = await self.link.call("rate limit", shared, lambda: False)
        if wait is False:  # Redis is down: this process's bucket decides
            return await self.local.hit(key)
        return float(wait) if wait is not None else None


class RedisDedupe(DedupeStore):
    """Claims shared by every replica on one Redis (``SET key NX EX``, one atomic round trip).
    While Redis is down, claims are made in this process, so one replica never handles one
    delivery twice; across replicas the surface has a second guard (the GitHub reply finds its
    own earlier comment by its marker)."""

    def __init__(self, link: RedisLink, ttl_s: float, prefix: str = "fits:dedupe:",
                 local: MemoryDedupe | None = None) -> None:
        self.link = link
        self.ttl_s = max(1, int(ttl_s))
        self.prefix = prefix
        self.local = local or MemoryDedupe(ttl_s)

    async def claim(self, key: str) -> bool:
        async def shared(client: Redis) -> bool | None:
            return bool(await client.set(self.prefix + key, b"1", nx=True, ex=self.ttl_s))

        # Claimed here too, always: a key this process handled while Redis was down (or before
        # Redis lost it) stays handled, whatever Redis says later.
        here = await self.local.claim(key)
        on_redis = await self.link.call("dedupe claim", shared, lambda: None)
        return here and on_redis is not False

    async def release(self, key: str) -> None:
        async def drop(client: Redis) -> None:
            await client.delete(self.prefix + key)

        await self.link.call("dedupe release", drop, lambda: None)
        await self.local.release(key)
