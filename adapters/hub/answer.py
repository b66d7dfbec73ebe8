"""An estimate with the Hub: the async counterpart of core.answer.estimate_command, used by the
CLI (for models the snapshot does not have) and by the service for every estimate."""

from __future__ import annotations

from typing import Any

from adapters.hub.cache import ConfigCache
from adapters.hub.resolve import resolve_model
from adapters.hub.settings import HubSettings
from core.answer import ReportJob, RunJob, hub_job, offline_job, with_hub_details
from core.parser import EstimateCommand
from core.report import Report


async def run_here(job: ReportJob) -> Report:
    """Compute the report on the caller's loop (the CLI; tests)."""
    return job.run()


async def estimate_command_async(command: EstimateCommand, settings: HubSettings,
                                 cache: ConfigCache, config: dict[str, Any] | None = None,
                                 run: RunJob = run_here) -> Report:
    """``estimate_command`` with the Hub: the snapshot answers the ids it has (exact, instant),
    the Hub the others unless ``settings.offline`` (then the offline path and its 'did you
    mean'). A GGUF repo asked without a quantization is answered for one of its own files.
    ``run`` computes the report (the service's runs off the event loop when it may be slow)."""
    if config is not None:
        return await run(offline_job(command, config))
    found = await resolve_model(command.request.model, settings, cache)
    report = await run(hub_job(command, found))
    return with_hub_details(report, found)
