"""Which deliveries were already handled, so that each is answered once.

GitHub redelivers a webhook (by hand or through its API, for 3 days) with the same
``X-GitHub-Delivery`` id, and behind a load balancer two replicas may each receive it. A surface
claims the id before it queues the work: only the first claim wins. When the work cannot be done
(queue full, GitHub refused the comment) the claim is released, so that a redelivery runs again.

In-process: a bounded store whose entries expire. On Redis (REDIS_URL): bot/redis_store.py's
RedisDedupe, atomic across replicas, which claims in this process as well and falls back to that
while Redis is down, so that one replica never handles one delivery twice.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable

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
