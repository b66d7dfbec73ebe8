"""The cache in front of the Hub, and the three rules every Hub call follows.

- ``ConfigCache``: a narrow store, ``get(key)`` and ``set(key, value, ttl_s)``, of JSON-able
  values. ``MemoryConfigCache`` keeps them in-process (cachetools ``TTLCache``: LRU-bounded, each
  entry with its own expiry so negative answers can live shorter); ``DiskConfigCache`` keeps them
  as small JSON files (``FITS_CACHE_DIR``), so a later CLI run, even an offline one, finds them.
  A Redis store needs only the two methods.
- Single flight (``ConfigCache.get_or_fetch``): concurrent requests for one key share one upstream
  call, an ``asyncio`` task per key that all of them await.
- A deadline: the shared call is bounded by ``asyncio.wait_for``; nobody waits longer.
- ``with_retries``: 429 and 5xx answers are retried with exponential backoff and jitter, honouring
  ``Retry-After``, but never past the deadline.

Nothing here knows about the Hub; ``core.hub`` supplies the fetch and says what is retryable.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from cachetools import TTLCache

T = TypeVar("T")

DAY_S = 86_400.0


class Deadline:
    """A point in time (monotonic clock) that a whole operation must finish by."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return self.remaining() <= 0.0


class ConfigCache(ABC):
    """Key -> JSON-able value with a time to live. Values are shared: callers must not mutate them.

    Subclasses implement ``get`` and ``set``; single flight comes with the base class and is per
    process (one asyncio task per key in flight).
    """

    def __init__(self) -> None:
        self._flights: dict[str, asyncio.Task[Any]] = {}

    @abstractmethod
    async def get(self, key: str) -> Any | None:
        """The value stored under ``key`` if it has not expired, else None."""

    @abstractmethod
    async def set(self, key: str, value: Any, ttl_s: float) -> None:
        """Store ``value`` (JSON-able) under ``key`` for ``ttl_s`` seconds."""

    async def get_or_fetch(self, key: str, fetch: Callable[[], Awaitable[T]], *,
                           ttl_s: Callable[[T], float | None], deadline_s: float) -> T:
        """The cached value, or the result of ``fetch()`` shared by every concurrent caller.

        ``ttl_s(value)`` says how long to keep a result (None: do not keep it). The fetch runs in
        its own task bounded by ``deadline_s``: a caller that gives up (is cancelled) does not
        cancel it for the others. Raises ``TimeoutError`` past the deadline and whatever the fetch
        raised; failures are not cached.
        """
        flight = self._live_flight(key)
        if flight is None:
            hit = await self.get(key)
            if hit is not None:
                return hit  # type: ignore[no-any-return]
            flight = self._live_flight(key)  # another caller may have started one meanwhile
        if flight is None:
            flight = asyncio.ensure_future(self._fly(key, fetch, ttl_s, deadline_s))
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._land(key, done))
        return await asyncio.shield(flight)

    def in_flight(self) -> int:
        return sum(1 for f in self._flights.values() if not f.done())

    def _live_flight(self, key: str) -> asyncio.Task[Any] | None:
        flight = self._flights.get(key)
        if flight is None or flight.done() or flight.get_loop() is not asyncio.get_running_loop():
            return None
        return flight

    def _land(self, key: str, flight: asyncio.Task[Any]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # mark retrieved: every waiter may have left already

    async def _fly(self, key: str, fetch: Callable[[], Awaitable[T]],
                   ttl_s: Callable[[T], float | None], deadline_s: float) -> T:
        value = await asyncio.wait_for(fetch(), deadline_s)
        ttl = ttl_s(value)
        if ttl is not None and ttl > 0:
            await self.set(key, value, ttl)
        return value


class MemoryConfigCache(ConfigCache):
    """In-process: a cachetools ``TTLCache`` bounded to ``maxsize`` entries (least recently used go
    first) whose global TTL is the longest allowed; each entry also carries its own expiry."""

    def __init__(self, maxsize: int = 2048, max_ttl_s: float = DAY_S) -> None:
        super().__init__()
        self.max_ttl_s = max_ttl_s
        self._data: TTLCache[str, tuple[float, Any]] = TTLCache(maxsize=maxsize, ttl=max_ttl_s)

    async def get(self, key: str) -> Any | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if time.monotonic() >= expires:
            self._data.pop(key, None)
            return None
        return value

    async def set(self, key: str, value: Any, ttl_s: float) -> None:
        ttl = min(ttl_s, self.max_ttl_s)
        self._data[key] = (time.monotonic() + ttl, value)

    def __len__(self) -> int:
        return len(self._data)


class DiskConfigCache(ConfigCache):
    """One small JSON file per key under ``directory``, with an in-memory front. Survives the
    process, so repeated `fits` runs (and offline ones) reuse what an earlier run fetched."""

    def __init__(self, directory: str | os.PathLike[str], *, maxsize: int = 512,
                 max_ttl_s: float = 7 * DAY_S) -> None:
        super().__init__()
        self.directory = Path(directory)
        self.max_ttl_s = max_ttl_s
        self._front = MemoryConfigCache(maxsize=maxsize, max_ttl_s=max_ttl_s)

    def _path(self, key: str) -> Path:
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"

    async def get(self, key: str) -> Any | None:
        hit = await self._front.get(key)
        if hit is not None:
            return hit
        try:
            item = json.loads(self._path(key).read_text())
            expires, stored_key, value = item["expires"], item["key"], item["value"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if stored_key != key or not isinstance(expires, (int, float)):
            return None
        left = float(expires) - time.time()
        if left <= 0:
            return None
        await self._front.set(key, value, left)
        return value

    async def set(self, key: str, value: Any, ttl_s: float) -> None:
        ttl = min(ttl_s, self.max_ttl_s)
        await self._front.set(key, value, ttl)
        text = json.dumps({"key": key, "expires": time.time() + ttl, "value": value})
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "w") as out:
                out.write(text)
            os.replace(tmp, self._path(key))
        except OSError:
            pass  # a read-only or full disk only costs the next run a fetch


async def with_retries(call: Callable[[], Awaitable[T]], *, retryable: Callable[[Exception], float | None],
                       deadline: Deadline, attempts: int = 3, base_delay_s: float = 0.2,
                       max_delay_s: float = 2.0) -> T:
    """``await call()``, retried while ``retryable(exc)`` returns a delay hint (seconds, 0 for
    none; None means do not retry), with exponential backoff and jitter. Gives up, re-raising the
    last error, after ``attempts`` tries or when the next wait would pass the deadline."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except Exception as exc:
            hint = retryable(exc)
            if hint is None or attempt >= attempts:
                raise
            backoff = min(max_delay_s, base_delay_s * 2 ** (attempt - 1))
            delay = max(hint, backoff * (0.5 + random.random() / 2))
            if delay >= deadline.remaining():
                raise
            await asyncio.sleep(delay)
