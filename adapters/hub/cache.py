"""The cache in front of the Hub.

- ``ConfigCache``: a narrow store, ``get(key)`` and ``set(key, value, ttl_s)``, of JSON values.
  ``MemoryConfigCache`` keeps them in-process (cachetools ``TTLCache``: LRU-bounded, each entry
  with its own expiry so negative answers can live shorter); ``DiskConfigCache`` keeps them as
  small JSON files (``FITS_CACHE_DIR``), so a later CLI run, even an offline one, finds them.
  bot/redis_store.py keeps them in Redis, for every replica.
- A ``Codec`` turns a typed value into that JSON and back. A stored value the codec does not
  read (written by another release, or by something else) is a miss: it is fetched again.
- Single flight (``ConfigCache.get_or_fetch``): concurrent requests for one key share one upstream
  call, an ``asyncio`` task per key that all of them await, bounded by a deadline.

Nothing here knows about the Hub; adapters/hub/resolve.py supplies the fetch and the codec.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from cachetools import TTLCache

from adapters.hub.settings import HubSettings

T = TypeVar("T")
log = logging.getLogger("fits.hub")

DAY_S = 86_400.0


@dataclass(frozen=True)
class Codec(Generic[T]):
    """How values of one type are stored: ``dump`` to JSON, ``load`` back (None: not a value of
    this type, which the cache treats as a miss)."""

    dump: Callable[[T], Any]
    load: Callable[[object], T | None]


class ConfigCache(ABC):
    """Key -> JSON value with a time to live. Values are shared: callers must not mutate them.

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
        """Store ``value`` (JSON) under ``key`` for ``ttl_s`` seconds."""

    async def load(self, key: str, codec: Codec[T]) -> T | None:
        """The value under ``key`` as ``codec`` reads it; None for a miss or a foreign value."""
        return codec.load(await self.get(key))

    async def store(self, key: str, value: T, codec: Codec[T], ttl_s: float) -> None:
        await self.set(key, codec.dump(value), ttl_s)

    async def get_or_fetch(self, key: str, fetch: Callable[[], Awaitable[T]], *, codec: Codec[T],
                           ttl_s: Callable[[T], float | None], deadline_s: float) -> T:
        """The cached value, or the result of ``fetch()`` shared by every concurrent caller.

        ``ttl_s(value)`` says how long to keep a result (None: do not keep it). The fetch runs in
        its own task bounded by ``deadline_s``: a caller that gives up (is cancelled) does not
        cancel it for the others. Raises ``TimeoutError`` past the deadline and whatever the fetch
        raised; failures are not cached.
        """
        flight = self._live_flight(key)
        if flight is None:
            hit = await self.load(key, codec)
            if hit is not None:
                return hit
            flight = self._live_flight(key)  # another caller may have started one meanwhile
        if flight is None:
            flight = asyncio.ensure_future(self._fly(key, fetch, codec, ttl_s, deadline_s))
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

    async def _fly(self, key: str, fetch: Callable[[], Awaitable[T]], codec: Codec[T],
                   ttl_s: Callable[[T], float | None], deadline_s: float) -> T:
        value = await asyncio.wait_for(fetch(), deadline_s)
        ttl = ttl_s(value)
        if ttl is not None and ttl > 0:
            await self.store(key, value, codec, ttl)
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
        self._warned = False

    def _path(self, key: str) -> Path:
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"

    async def get(self, key: str) -> Any | None:
        hit = await self._front.get(key)
        if hit is not None:
            return hit
        try:
            item = json.loads(self._path(key).read_text())
            expires, stored_key, value = item["expires"], item["key"], item["value"]
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._warn("read", exc)
            return None
        except (ValueError, KeyError, TypeError):
            return None  # a file cut short or not ours: a miss, rewritten by the next fetch
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
        except OSError as exc:  # a read-only or full disk costs later runs a fetch: say so once
            self._warn("write", exc)

    def _warn(self, what: str, exc: OSError) -> None:
        if not self._warned:
            self._warned = True
            log.warning("the Hub cache in FITS_CACHE_DIR=%s could not %s a file (%s: %s); "
                        "later runs fetch again", self.directory, what, type(exc).__name__,
                        exc.strerror or exc)


def make_cache(settings: HubSettings) -> ConfigCache:
    """On disk under FITS_CACHE_DIR when it is set (the CLI then reuses earlier answers), else in
    process."""
    if settings.cache_dir:
        return DiskConfigCache(settings.cache_dir)
    return MemoryConfigCache()
