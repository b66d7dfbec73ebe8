"""Which deliveries were already handled, so that each is answered once.

GitHub redelivers a webhook (by hand or through its API, for 3 days) with the same
``X-GitHub-Delivery`` id, and behind a load balancer two replicas may each receive it. A surface
claims the id before it queues the work: only the first claim wins. When the work cannot be done
(queue full, GitHub refused the comment) the claim is released, so that a redelivery runs again.

In-process: a bounded store whose entries expire. On Redis (REDIS_URL): ``SET key NX EX``, one
round trip that is atomic across replicas. Like bot/redis_store.py it fails open: with Redis
down a claim succeeds (with a logged warning), because answering twice beats never answering,
and the GitHub surface updates its earlier reply rather than posting another when it finds one.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("fits.dedupe")

# GitHub lets a delivery be redelivered for 3 days: remember ids that long.
DEFAULT_TTL_S = 3 * 24 * 3600
DEFAULT_MAX_KEYS = 10_000


class DedupeStore(ABC):
    """Claims on keys (e.g. delivery ids) that expire after ``ttl_s`` seconds."""

    @abstractmethod
    async def claim(self, key: str) -> bool:
        """True the first time ``key`` is claimed (within its time to live), False after."""

    @abstractmethod
    async def release(self, key: str) -> None:
        """Forget a claim: the work was not done, and a redelivery should do it."""


class MemoryDedupe(DedupeStore):
    """One process's claims: at most ``max_keys``, the oldest dropped first when full."""

    def __init__(self, ttl_s: float = DEFAULT_TTL_S, max_keys: int = DEFAULT_MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_keys = max_keys
        self.clock = clock
        self._expiry: OrderedDict[str, float] = OrderedDict()  # key -> expiry, oldest first

    def __len__(self) -> int:
        return len(self._expiry)

    async def claim(self, key: str) -> bool:
        now = self.clock()
        # Every entry lives equally long, so insertion order is expiry order.
        while self._expiry and next(iter(self._expiry.values())) <= now:
            self._expiry.popitem(last=False)
        if key in self._expiry:
            return False
        while len(self._expiry) >= self.max_keys:
            self._expiry.popitem(last=False)
        self._expiry[key] = now + self.ttl_s
        return True

    async def release(self, key: str) -> None:
        self._expiry.pop(key, None)


class RedisDedupe(DedupeStore):
    """Claims shared by every replica on one Redis."""

    def __init__(self, client: Redis, ttl_s: float = DEFAULT_TTL_S,
                 prefix: str = "fits:dedupe:") -> None:
        self.client = client
        self.ttl_s = max(1, int(ttl_s))
        self.prefix = prefix

    async def claim(self, key: str) -> bool:
        from redis.exceptions import RedisError

        try:
            created = await self.client.set(self.prefix + key, b"1", nx=True, ex=self.ttl_s)
        except RedisError as exc:
            log.warning("redis dedupe claim failed; handling the delivery anyway",
                        extra={"fields": {"error": type(exc).__name__}})
            return True
        return bool(created)

    async def release(self, key: str) -> None:
        from redis.exceptions import RedisError

        try:
            await self.client.delete(self.prefix + key)
        except RedisError as exc:
            log.warning("redis dedupe release failed",
                        extra={"fields": {"error": type(exc).__name__}})
