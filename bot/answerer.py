"""One answering service for every surface: rate limits, parse, resolve (snapshot, cache, Hub),
estimate, and the request metrics. Surfaces hand it the user's text and who asked; they get back
an Answer to render, or a UserError (RateLimited included) whose sentence and hint they show."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from core.answer import Answer, Caller, GpuListAnswer, HelpAnswer, ModelListAnswer
from core.errors import RateLimited, UserError
from core.parser import (
    MAX_INPUT_CHARS,
    EstimateCommand,
    GpusCommand,
    HelpCommand,
    ModelsCommand,
    parse_command,
)
from core.report import Report

if TYPE_CHECKING:
    from adapters.hub.cache import ConfigCache
    from adapters.hub.settings import HubSettings
    from bot.compute import ReportRunner
    from bot.ratelimit import RateLimiter


class Answerer:
    def __init__(self, hub: HubSettings, cache: ConfigCache, limiter: RateLimiter,
                 metrics: Any = None, runner: ReportRunner | None = None) -> None:
        self.hub = hub
        self.cache = cache
        self.limiter = limiter
        self.metrics = metrics
        self.runner = runner  # None: reports are computed here, on the caller's loop

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
        if len(text) > MAX_INPUT_CHARS:
            raise UserError(f"That command is too long ({len(text):,} characters, limit 2,000).",
                            "Shorten it to the model, a quantization and a few key=value options.")
        if caller is not None:
            await self.check_rate(caller)
        start = time.perf_counter()
        command = parse_command(text)
        if isinstance(command, HelpCommand):
            from core.help import help_text

            return HelpAnswer(help_text(command.topic))
        if isinstance(command, GpusCommand):
            from core.gpus import search_gpus

            return GpuListAnswer(command.query, search_gpus(command.query, limit=25))
        if isinstance(command, ModelsCommand):
            from adapters.hub.search import find_models

            found = await find_models(command.query, self.hub, self.cache)
            return ModelListAnswer(command.query, found.ids, found.note)
        assert isinstance(command, EstimateCommand)
        report = await self.estimate(command, config)
        if self.metrics is not None:
            self.metrics.estimate_seconds.observe(time.perf_counter() - start)
        return report

    async def estimate(self, command: EstimateCommand,
                       config: dict[str, Any] | None = None) -> Report:
        from adapters.hub.answer import estimate_command_async

        if self.runner is None:
            return await estimate_command_async(command, self.hub, self.cache, config)
        return await estimate_command_async(command, self.hub, self.cache, config,
                                            run=self.runner.run)

    async def search_models(self, query: str, limit: int = 25) -> list[str]:
        """Model ids for autocomplete (bundled first, then the Hub, cached)."""
        from adapters.hub.search import search_models

        return await search_models(query, self.hub, self.cache, limit=limit)


async def answer_within(answerer: Answerer, text: str, caller: Caller | None,
                        config: dict[str, Any] | None, seconds: float,
                        ) -> tuple[asyncio.Task[Answer], Answer | None]:
    """Start answering; wait up to ``seconds``. Returns the task and its answer when it finished
    in time (re-raising its UserError), else None: the surface defers and awaits the task."""
    task = asyncio.ensure_future(answerer.answer(text, caller, config))
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if done:
        return task, task.result()
    return task, None
