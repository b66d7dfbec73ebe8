"""One answering service for every surface: rate limits, parse, resolve (snapshot, cache, Hub),
estimate, and the request metrics. Surfaces hand it the user's text and who asked; they get back
an Answer to render, or a UserError (RateLimited included) whose sentence and hint they show."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache

from bot.dispatch import answer
from core.answer import Answer, Caller
from core.errors import RateLimited, UserError
from core.parser import MAX_INPUT_CHARS, parse_command
from core.report import Report

if TYPE_CHECKING:
    from adapters.hub.cache import ConfigCache
    from adapters.hub.settings import HubSettings
    from bot.charts import ChartLinks
    from bot.compute import ReportRunner
    from bot.ratelimit import RateLimiter
    from bot.report_store import RedisReportStore


class Answerer:
    def __init__(self, hub: HubSettings, cache: ConfigCache, limiter: RateLimiter,
                 metrics: Any = None, runner: ReportRunner | None = None,
                 cache_size: int = 4096, shared: RedisReportStore | None = None) -> None:
        self.hub = hub
        self.cache = cache
        self.limiter = limiter
        self.metrics = metrics
        self.runner = runner  # None: reports are computed here, on the caller's loop
        self.charts: ChartLinks | None = None  # set by the app when it serves /chart
        # Answers to repeated questions, by the parsed command (every default filled in):
        # only answers that need no Hub (bundled models, sizes), so nothing goes stale.
        self.answers: LRUCache[str, Answer] = LRUCache(maxsize=cache_size or 1)
        # The hot path of a repeated question skips the parser too: the exact text as sent
        # maps to its parsed key, and the key to its rendered JSON.
        self.keys_by_text: LRUCache[str, str] = LRUCache(maxsize=cache_size or 1)
        self.rendered: LRUCache[tuple[str, str], str] = LRUCache(maxsize=cache_size or 1)
        self.cache_size = cache_size
        self.shared = shared  # with REDIS_URL: reports every replica has worked out

    async def check_rate(self, caller: Caller) -> None:
        for key in caller.keys:
            retry_after = await self.limiter.hit(key)
            if retry_after is not None:
                who = "one user" if ":user:" in key or key.startswith("api:") else \
                    "one workspace" if ":team:" in key else \
                    "one server" if ":guild:" in key else "one repository"
                raise RateLimited(retry_after, who)

    async def answer(self, text: str, caller: Caller | None = None,
                     config: dict[str, Any] | None = None) -> Answer:
        """The answer to one command. Raises UserError (with RateLimited) for the user to see."""
        found, _ = await self._answer(text, caller, config)
        return found

    async def answer_rendered(self, text: str, caller: Caller | None,
                              config: dict[str, Any] | None, kind: str,
                              render: Callable[[Answer], str]) -> str:
        """``render(answer)``, kept with the answer when it is cached (``kind`` names the
        rendering: the same answer renders once per kind)."""
        found, key = await self._answer(text, caller, config)
        if key is None:
            return render(found)
        if (hit := self.rendered.get((key, kind))) is None:
            hit = self.rendered[(key, kind)] = render(found)
        return hit

    async def _answer(self, text: str, caller: Caller | None,
                      config: dict[str, Any] | None) -> tuple[Answer, str | None]:
        """The answer and its cache key (None: not cached)."""
        if len(text) > MAX_INPUT_CHARS:
            raise UserError(f"That command is too long ({len(text):,} characters, limit 2,000).",
                            "Shorten it to the model, a quantization and a few key=value options.")
        if caller is not None:
            await self.check_rate(caller)
        cacheable = config is None and self.cache_size > 0
        if cacheable and (key := self.keys_by_text.get(text)) is not None \
                and (hit := self.answers.get(key)) is not None:
            self._count_cache("hit")
            return hit, key
        start = time.perf_counter()
        command = parse_command(text)
        key = repr(command) if cacheable else None
        if key is not None and (hit := self.answers.get(key)) is not None:
            self._count_cache("hit")
            self.keys_by_text[text] = key
            return hit, key
        if key is not None and self.shared is not None \
                and (stored := await self.shared.get(key)) is not None:
            self._count_cache("shared_hit")
            self.answers[key] = stored
            self.keys_by_text[text] = key
            return stored, key
        found = await answer(command, self.hub, self.cache, config,
                             self.runner.run if self.runner is not None else None)
        if isinstance(found, Report) and self.metrics is not None:
            self.metrics.estimate_seconds.observe(time.perf_counter() - start)
        if key is None or not _needs_no_hub(found):
            return found, None
        self._count_cache("miss")
        self.answers[key] = found
        self.keys_by_text[text] = key
        if self.shared is not None and isinstance(found, Report):
            await self.shared.put(key, found)
        return found, key

    def _count_cache(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.report_cache.labels(result).inc()

    def picture_url(self, answer: Answer) -> str | None:
        return self.charts.url_for(answer) if self.charts is not None else None

    async def search_models(self, query: str, limit: int = 25) -> list[str]:
        """Model ids for autocomplete (bundled first, then the Hub, cached)."""
        from adapters.hub.search import search_models

        return await search_models(query, self.hub, self.cache, limit=limit)


def _needs_no_hub(found: Answer) -> bool:
    """Whether an answer came from the bundled snapshot or a size alone (a Hub answer may change
    with the repo; lists of Hub models too)."""
    from core.compare import CompareAnswer
    from core.ranking import BestAnswer

    if isinstance(found, Report):
        return found.model.source in ("snapshot", "size")
    if isinstance(found, CompareAnswer):
        return all(c.report is not None and c.report.model.source in ("snapshot", "size")
                   for c in found.cells)
    return isinstance(found, BestAnswer)
