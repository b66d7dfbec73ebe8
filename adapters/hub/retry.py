"""Deadlines and retries for Hub calls.

- ``Deadline``: the point in time (monotonic clock) a whole resolve must finish by; every request
  of it is bounded by what is left.
- ``with_retries``: 429 and 5xx answers are retried with exponential backoff and jitter,
  honouring ``Retry-After``, but never past the deadline.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class Deadline:
    """A point in time (monotonic clock) that a whole operation must finish by."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return self.remaining() <= 0.0


async def with_retries(call: Callable[[], Awaitable[T]], *,
                       retryable: Callable[[Exception], float | None], deadline: Deadline,
                       attempts: int = 3, base_delay_s: float = 0.2,
                       max_delay_s: float = 2.0) -> T:
    """``await call()``, retried while ``retryable(exc)`` returns a delay hint (seconds, 0 for
    none; None means do not retry), with exponential backoff and jitter. Gives up, re-raising the
    last error, after ``attempts`` tries or when the next wait would pass the deadline."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except Exception as exc:  # re-raised below unless ``retryable`` asks for another try
            hint = retryable(exc)
            if hint is None or attempt >= attempts:
                raise
            backoff = min(max_delay_s, base_delay_s * 2 ** (attempt - 1))
            delay = max(hint, backoff * (0.5 + random.random() / 2))
            if delay >= deadline.remaining():
                raise
            await asyncio.sleep(delay)
