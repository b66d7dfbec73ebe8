"""Rate limits: a token bucket per caller (user, workspace, guild, or API client address).

The limiter sits behind a small interface so several replicas can later share one on Redis;
in-process is the default. Buckets of callers who went quiet expire, so memory stays bounded.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

from cachetools import TTLCache

IDLE_SECONDS = 600  # forget a caller's bucket after 10 quiet minutes
MAX_CALLERS = 100_000


class RateLimiter(ABC):
    @abstractmethod
    async def hit(self, key: str) -> float | None:
        """Count one request for ``key``: None if allowed, else seconds until one is."""


class MemoryRateLimiter(RateLimiter):
    """``per_minute`` requests a minute on average, with bursts of up to ``burst``."""

    def __init__(self, per_minute: float, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.buckets: TTLCache[str, tuple[float, float]] = TTLCache(MAX_CALLERS, IDLE_SECONDS)

    async def hit(self, key: str) -> float | None:
        now = time.monotonic()
        tokens, last = self.buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self.buckets[key] = (tokens - 1.0, now)
            return None
        self.buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate if self.rate > 0 else float(IDLE_SECONDS)


class NoRateLimits(RateLimiter):
    """FITS_RATE_LIMITS=off: a private deployment that wants none."""

    async def hit(self, key: str) -> float | None:
        return None
