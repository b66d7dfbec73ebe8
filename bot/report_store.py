"""Reports shared by every replica on Redis, behind each process's own LRU (bot/answerer.py).

A stored report is keyed by the question as parsed (every default filled in) and by the build:
a digest of core's code and data, so replicas of two releases during a rolling deploy never
answer with each other's figures. Only answers that need no Hub are stored (bundled models and
sizes: their inputs are in the build), so nothing goes stale; entries expire after a day to
bound Redis' memory. A stored value is JSON rebuilt into typed classes from an allow-list
(core.report.report_from_json), never pickle: whoever can write to Redis cannot run code here,
and an entry that does not read back is a miss. Redis down or slow: a miss, through the link's
circuit breaker (bot/redis_store.py).
"""

from __future__ import annotations

import hashlib
import logging
from functools import cache
from pathlib import Path

from redis.asyncio import Redis

from bot.redis_store import RedisLink
from core.report import Report, report_from_json, report_to_json

log = logging.getLogger("fits.reports")
CORE = Path(__file__).resolve().parent.parent / "core"
TTL_S = 24 * 3600


@cache
def build_digest() -> str:
    """A digest of every file core answers from (its modules and bundled data)."""
    digest = hashlib.sha256()
    for path in sorted(CORE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(CORE).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class RedisReportStore:
    def __init__(self, link: RedisLink, ttl_s: int = TTL_S, prefix: str = "fits:report:") -> None:
        self.link = link
        self.ttl_s = ttl_s
        self.prefix = f"{prefix}{build_digest()}:"

    def _key(self, question: str) -> str:
        return self.prefix + hashlib.sha256(question.encode()).hexdigest()

    async def get(self, question: str) -> Report | None:
        raw = await self.link.call("report get", lambda r: r.get(self._key(question)),
                                   lambda: None)
        if not raw:
            return None
        try:
            return report_from_json(raw)
        except ValueError:  # written by something else, or cut short: answer afresh
            log.warning("a stored report did not read back; answering afresh")
            return None

    async def put(self, question: str, report: Report) -> None:
        text = report_to_json(report)

        async def store(client: Redis) -> None:
            await client.set(self._key(question), text, ex=self.ttl_s)

        await self.link.call("report set", store, lambda: None)
