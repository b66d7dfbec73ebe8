"""How long the event loop was held: a task asks to wake every ``interval_s`` and records how
late it woke. A late wake-up is time something held the loop (a report computed inline, a
large JSON body), during which /healthz and every other request waited. The histogram and the
longest stall since start are metrics, labelled with the worker, so a load test (or an alert)
sees each worker's stalls without a client's own scheduling in the figure."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

INTERVAL_S = 0.01


def monitor(interval_s: float = INTERVAL_S
            ) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp cleanup context that runs the monitor for the app's lifetime."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        from bot.services import METRICS, SETTINGS

        metrics = app[METRICS]
        worker = str(app[SETTINGS].worker_index)
        lag = metrics.loop_lag.labels(worker)
        longest = metrics.loop_lag_max.labels(worker)

        async def watch() -> None:
            worst = 0.0
            while True:
                before = time.perf_counter()
                await asyncio.sleep(interval_s)
                late = max(0.0, time.perf_counter() - before - interval_s)
                lag.observe(late)
                if late > worst:
                    worst = late
                    longest.set(late)

        task = asyncio.ensure_future(watch())
        try:
            yield
        finally:
            task.cancel()

    return run
