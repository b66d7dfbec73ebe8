"""The one place a parsed command becomes an answer, for the CLI and the service alike.

``answer`` is the whole of it (async: the Hub may be asked). ``answer_here`` is the part that
needs no Hub and no event loop (help, GPUs, estimates of bundled models, sizes and uploaded
configs), which the CLI uses first so that it never loads asyncio or huggingface_hub for them;
it answers None when only ``answer`` can."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.answers import GpuListAnswer, HelpAnswer, ModelListAnswer
from core.errors import UserError
from core.parser import (
    BestCommand,
    Command,
    CompareCommand,
    EstimateCommand,
    GpusCommand,
    HelpCommand,
    ModelsCommand,
    parse_command,
)

if TYPE_CHECKING:
    from adapters.hub.cache import ConfigCache
    from adapters.hub.settings import HubSettings
    from core.answer import Answer, ReportJob, RunJob
    from core.compare import CompareAnswer
    from core.ranking import BestAnswer


LIST_LIMIT = 25  # rows a list shows: what fits in a Discord embed and a Slack section


def _lookup(command: Command) -> Answer | None:
    if isinstance(command, HelpCommand):
        from core.help import help_text

        return HelpAnswer(help_text(command.topic))
    if isinstance(command, GpusCommand):
        from core.gpus import search_gpus

        found = search_gpus(command.query, limit=LIST_LIMIT + 10_000)
        return GpuListAnswer(command.query, found[:LIST_LIMIT], len(found[LIST_LIMIT:]))
    return None


def local_job(command: EstimateCommand, config: dict[str, Any] | None) -> ReportJob | None:
    """The estimate's job when nothing needs the Hub: an uploaded config, a size, a bundled id.
    (The estimator loads only here: help and lists never need it.)"""
    from core.answer import offline_job
    from core.resolve import parse_size
    from core.snapshot import lookup

    model = command.request.model
    if config is not None or parse_size(model) is not None or lookup(model)[0] is not None:
        return offline_job(command, config)
    return None


def best_answer(command: BestCommand) -> BestAnswer:
    """The ranking over the bundled snapshot (CPU work: the service runs it off its loop)."""
    from core.best import best
    from core.gpus import resolve_gpu

    template = command.template
    return best(template, resolve_gpu(template.gpu), command.use, command.min_speed,
                command.limit)


def _estimate_cell(text: str) -> EstimateCommand:
    parsed = parse_command(text)
    assert isinstance(parsed, EstimateCommand)  # the parser built and checked it
    return parsed


def compare_here(command: CompareCommand) -> CompareAnswer | None:
    """Every cell from the snapshot, or None when some cell needs the Hub."""
    from core.compare import CompareAnswer, CompareCell, failed

    jobs = []
    for row, column, text in command.cells:
        job = local_job(_estimate_cell(text), None)
        if job is None:
            return None
        jobs.append((row, column, text, job))
    cells = []
    for row, column, text, job in jobs:
        try:
            cells.append(CompareCell(row, column, text, job.run()))
        except UserError as err:
            cells.append(failed(row, column, text, err))
    return CompareAnswer(command.rows, command.columns, tuple(cells))


def answer_here(command: Command, config: dict[str, Any] | None = None) -> Answer | None:
    """The answer when it needs neither the Hub nor an event loop; None otherwise."""
    if (found := _lookup(command)) is not None:
        return found
    if isinstance(command, BestCommand):
        return best_answer(command)
    if isinstance(command, CompareCommand):
        return compare_here(command)
    if isinstance(command, EstimateCommand) and (job := local_job(command, config)) is not None:
        return job.run()
    return None


async def answer(command: Command, hub: HubSettings, cache: ConfigCache,
                 config: dict[str, Any] | None = None, run: RunJob | None = None) -> Answer:
    """The answer to any command; ``run`` computes reports (the service's, off its loop)."""
    if (found := _lookup(command)) is not None:
        return found
    if isinstance(command, ModelsCommand):  # bundled ids first, then the Hub's
        from adapters.hub.search import find_models

        models = await find_models(command.query, hub, cache, LIST_LIMIT)
        return ModelListAnswer(command.query, models.ids, models.note, models.more,
                               models.more_on_hub)
    from adapters.hub.answer import estimate_command_async, run_here

    if isinstance(command, BestCommand):
        import asyncio  # the CLI's local answers never load it

        # A cold ranking builds every bundled spec (about 2 s): never on the event loop.
        return await asyncio.to_thread(best_answer, command)
    if isinstance(command, CompareCommand):
        from core.compare import CompareAnswer, CompareCell, failed

        cells = []
        for row, column, text in command.cells:
            try:
                report = await estimate_command_async(_estimate_cell(text), hub, cache, None,
                                                      run or run_here)
                cells.append(CompareCell(row, column, text, report))
            except UserError as err:
                cells.append(failed(row, column, text, err))
        return CompareAnswer(command.rows, command.columns, tuple(cells))
    assert isinstance(command, EstimateCommand)  # help and gpus were answered above
    return await estimate_command_async(command, hub, cache, config, run or run_here)
